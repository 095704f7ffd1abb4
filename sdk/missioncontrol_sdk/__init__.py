"""Mission Control's Python SDK: report threads, steps, transcripts, permission checks and logs."""

from missioncontrol_sdk.client import MissionControl, Stats
from missioncontrol_sdk.handler import MissionControlHandler
from missioncontrol_sdk.threads import Step, ThreadContext, current_thread

__all__ = ["MissionControl", "MissionControlHandler", "Stats", "Step", "ThreadContext", "current_thread"]
