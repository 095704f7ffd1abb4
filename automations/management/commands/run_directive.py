"""`manage.py run_directive NAME --input k=v ...`: run a directive here and now, step by step."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from automations import engine
from automations.inputs import InputError
from automations.models import Directive, StepRun
from automations.scope import SYSTEM
from missioncontrol.jsontext import dumps


class Command(BaseCommand):
    help = "Run a directive synchronously, printing each step; exits 1 if the run does not complete."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the directive's name")
        parser.add_argument(
            "--input", action="append", default=[], metavar="KEY=VALUE", help="an input (repeatable)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        directive = Directive.objects.filter(name=options["name"]).first()
        if directive is None:
            raise CommandError(f"no directive named {options['name']!r}")
        inputs: dict[str, str] = {}
        for pair in options["input"]:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise CommandError(f"--input {pair!r}: expected KEY=VALUE")
            inputs[key] = value
        try:
            # Whoever runs the command holds the database itself: a system run, reading everything.
            execution = engine.submit(directive, inputs, acting_for=SYSTEM, wait=True, on_step=self.progress)
        except InputError as exc:
            raise CommandError("; ".join(f"{k}: {', '.join(v)}" for k, v in exc.errors.items())) from None
        self.stdout.write(
            f"execution {execution.pk}: {execution.status} in {execution.duration_ms or 0:.0f} ms"
        )
        if execution.status != "completed":
            raise CommandError(execution.error or execution.status)
        self.stdout.write(dumps(execution.result))

    def progress(self, step: StepRun) -> None:
        label = f"{step.path} {step.kind}{' ' + step.name if step.name else ''}"
        if step.status == StepRun.Status.RUNNING:
            self.stdout.write(f"… {label}")
        elif step.status == StepRun.Status.COMPLETED:
            self.stdout.write(self.style.SUCCESS(f"✓ {label} ({step.duration_ms or 0:.0f} ms)"))
        else:
            self.stdout.write(self.style.ERROR(f"✗ {label}: {step.error}"))
