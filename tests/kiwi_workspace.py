"""A Kiwi MCP workspace written to Kiwi's documented formats, for the Kiwi tests.

A project (`shop/.ai`) and a user space, as docs/DIRECTIVE_AUTHORING.md and
docs/KNOWLEDGE_SYSTEM_DESIGN.md of leolilley/kiwi-mcp describe them: directives with
relationships, Python and YAML tools (in `tools/` and the older `scripts/`), knowledge
entries that reference each other and a directive, and one malformed directive.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from missioncontrol.config import KiwiConfig, KiwiWorkspaceConfig

DEPLOY_APP = """# Deploy the application

Builds, checks the time window and ships.

```xml
<directive name="deploy_app" version="1.2.0">
  <metadata>
    <description>Deploy the shop to an environment</description>
    <category>deployment</category>
    <author>kiwi-team</author>
    <permissions>
      <execute resource="tool" id="time/*" />
      <read resource="filesystem" path="src/**" />
      <execute resource="shell" command="make" />
    </permissions>
  </metadata>

  <relationships>
    <requires directive="build_app" />
    <suggests directive="smoke_tests" />
    <related directive="rollback" />
  </relationships>

  <context>
    <tech_stack>python</tech_stack>
  </context>

  <inputs>
    <input name="environment" type="string" required="true">
      Where to deploy (staging or production)
    </input>
    <input name="dry_run" type="boolean" required="false" default="false">
      Only say what would be done
    </input>
  </inputs>

  <process>
    <step name="check_window">
      <description>Check the deployment window</description>
      <action>Call the time tool; deploy only between 09:00 and 17:00 UTC.</action>
    </step>
    <step name="build">
      <description>Build the release</description>
      <action><![CDATA[Run `make release && ls dist/*.whl`]]></action>
    </step>
    <step name="ship">
      <description>Upload the release</description>
      <action>Copy dist/ to {{environment}}; show it as {CDATA_OPEN}x{CDATA_CLOSE}.</action>
    </step>
  </process>

  <outputs>
    <success>The release runs on the environment</success>
    <failure>Roll back with the rollback directive</failure>
  </outputs>
</directive>
```
"""

BUILD_APP = """# Build

```xml
<directive name="build_app" version="1.0.0">
  <metadata>
    <description>Build the release artifacts</description>
    <category>build</category>
    <author>kiwi-team</author>
    <permissions>
      <!-- No special permissions required -->
    </permissions>
  </metadata>
  <relationships>
    <extends directive="base_setup" />
  </relationships>
  <process>
    <step name="compile"><description>Compile</description><action>make</action></step>
  </process>
  <outputs><success>dist/ holds the release</success><failure>Read the build log</failure></outputs>
</directive>
```
"""

SMOKE_TESTS = """```xml
<directive name="smoke_tests" version="0.1.0">
  <metadata>
    <description>Quick checks after a deployment</description>
    <category>testing</category>
    <permissions><execute resource="tool" id="get_current_time" /></permissions>
  </metadata>
  <relationships><related directive="deploy_app" /></relationships>
  <process><step name="ping"><description>Ping the shop</description><action>curl it</action></step></process>
  <outputs><success>It answers</success><failure>Roll back</failure></outputs>
</directive>
```
"""

# Malformed: Kiwi's parser rejects a directive whose <metadata> has no <permissions>.
BROKEN = """# Broken

```xml
<directive name="broken" version="0.0.1">
  <metadata>
    <description>Forgot its permissions</description>
  </metadata>
  <process><step name="x"><action>y</action></step></process>
</directive>
```
"""

BASE_SETUP = """```xml
<directive name="base_setup" version="2.0.0">
  <metadata>
    <description>Prepare any project</description>
    <category>setup</category>
    <permissions><read resource="env" var="HOME" /></permissions>
  </metadata>
  <process>
    <step name="prepare"><description>Prepare</description><action>mkdir -p build</action></step>
  </process>
  <outputs><success>Ready</success></outputs>
</directive>
```
"""

LINTER = '''"""Lint the project's Python files.

Usage: linter.py [paths]
"""

__version__ = "1.0.0"
__tool_type__ = "python"
__executor_id__ = "python_runtime"


def main() -> None:
    print("ok")
'''

SCRAPE = '''"""Scrape a page into JSON."""

import requests  # noqa


def scrape(url):
    return requests.get(url).json()
'''

NOTIFY = """name: notify
version: "0.3.0"
tool_type: http
executor_id: http_client
description: Post a message to the team channel
"""

DEPLOY_CHECKLIST = """---
zettel_id: deploy-checklist
title: Deploy checklist
entry_type: checklist
version: "1.0.0"
author: kiwi-team
tags:
  - deployment
  - checklist
references:
  - deploy_app
---

# Deploy checklist

Run deploy_app only after reading [[rollback-notes]].
"""

ROLLBACK_NOTES = """---
zettel_id: rollback-notes
title: Rollback notes
entry_type: learning
tags: [deployment]
---

How to undo a deployment: see [[deploy-checklist]] and the basics in [[kiwi-overview]].
"""

KIWI_OVERVIEW = """---
zettel_id: kiwi-overview
title: Kiwi overview
entry_type: pattern
---

Directives, tools and knowledge.
"""


@dataclass
class KiwiFixture:
    project: Path
    user_space: Path

    @property
    def ai(self) -> Path:
        return self.project / ".ai"

    def config(self, server: str = "kiwi") -> KiwiConfig:
        return KiwiConfig(
            user_space=str(self.user_space),
            workspaces=(KiwiWorkspaceConfig("shop", str(self.project), server),),
        )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def kiwi_workspace(base: Path) -> KiwiFixture:
    project, user = base / "shop", base / "userspace"
    ai = project / ".ai"
    write(ai / "directives" / "deploy" / "deploy_app.md", DEPLOY_APP)
    write(ai / "directives" / "build" / "build_app.md", BUILD_APP)
    write(ai / "directives" / "testing" / "smoke_tests.md", SMOKE_TESTS)
    write(ai / "directives" / "broken.md", BROKEN)
    write(ai / "tools" / "utility" / "linter.py", LINTER)
    write(ai / "tools" / "__init__.py", "")
    write(ai / "tools" / "utility" / "__pycache__" / "linter.cpython-312.pyc", "\x00")
    write(ai / "scripts" / "scrape.py", SCRAPE)
    write(ai / "knowledge" / "deploy-checklist.md", DEPLOY_CHECKLIST)
    write(ai / "knowledge" / "ops" / "rollback-notes.md", ROLLBACK_NOTES)
    write(ai / "lockfiles" / "deploy_app.lock.json", "{}")  # not an item
    write(user / "directives" / "base_setup.md", BASE_SETUP)
    write(user / "tools" / "notify.yaml", NOTIFY)
    write(user / "knowledge" / "kiwi-overview.md", KIWI_OVERVIEW)
    return KiwiFixture(project, user)
