"""Service audit: what listens where, against the role's declared services.

Per host, one remote command (after cloud-init is done) ships the audit
module (components/hostagent/audit.py, standard library only) to
/usr/local/lib/hardened-do/audit.py, installs `hardened-do-audit.timer`
(which logs violations to the journal, auth.warning), and runs the audit
once, printing its JSON report: that report is this component's output.

In `enforce` mode an undeclared listener reachable from outside the VPC
fails the command, and with it `pulumi up`, with a message naming the host,
the port and the process. In `warn` mode the same findings are warnings of
the update. VPC-wide findings (an undeclared listener on the private
address, a private service bound to all interfaces) are warnings in both.

The deploy-time run happens when the command is created or its inputs change
(the audit module, the declaration, the mode); bump `rerun_token` to audit
again without other changes.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Literal, NotRequired, TypedDict

import pulumi
from pulumi_command import remote

from .remote import PASS_PREVIOUS_OUTPUT, HostConnection, check_hosts, connection_args, hostagent

AuditMode = Literal["enforce", "warn"]
_SCHEDULE = re.compile(r"[A-Za-z0-9 *:/,.~-]{1,64}")


class ServiceAuditArgs(TypedDict):
    hosts: list[HostConnection]
    """Hosts to audit."""
    mode: NotRequired[AuditMode]
    """`enforce` (default): an undeclared listener on a public interface fails
    the update. `warn`: it is reported as a warning."""
    schedule: NotRequired[str]
    """systemd OnCalendar= of the audit timer (default 'hourly')."""
    declarations: NotRequired[dict[str, dict]]
    """services.json document by host name (components/services.py
    `expected_listeners`), for hosts whose cloud-init did not write one.
    Hosts built by this project already have theirs."""
    rerun_token: NotRequired[pulumi.Input[str]]
    """Any value; changing it runs the deploy-time audit again."""


class ServiceAudit(pulumi.ComponentResource):
    """Installs the audit timer on each host and audits each host at deploy time."""

    reports: pulumi.Output[dict]
    """Deploy-time audit report (JSON document) by host name."""

    def __init__(self, name: str, args: ServiceAuditArgs, opts: pulumi.ResourceOptions | None = None):
        hosts = list(args["hosts"])
        check_hosts(hosts, component="ServiceAudit")
        mode = args.get("mode", "enforce")
        if mode not in ("enforce", "warn"):
            raise ValueError(f"ServiceAudit: mode must be 'enforce' or 'warn', not {str(mode)[:20]!r}")
        schedule = args.get("schedule", "hourly")
        if not _SCHEDULE.fullmatch(schedule):
            raise ValueError("ServiceAudit: schedule must be a systemd calendar expression such as 'hourly'")
        declarations = args.get("declarations") or {}
        unknown = sorted(set(declarations) - {h["name"] for h in hosts})
        if unknown:
            raise ValueError(f"ServiceAudit: declarations for unknown hosts: {', '.join(unknown)}")

        super().__init__("hardened-do:index:ServiceAudit", name, None, opts)
        source = hostagent.source("audit.py")
        source_digest = hashlib.sha256(source.encode()).hexdigest()
        self.commands = {}
        reports = {}
        for h in hosts:
            host = h["name"]
            declared = declarations.get(host)
            declared_json = json.dumps(declared, sort_keys=True) if declared is not None else ""
            cmd = remote.Command(
                f"{name}-audit-{host}",
                add_previous_output_in_env=PASS_PREVIOUS_OUTPUT,
                connection=connection_args(h),
                create=hostagent.remote_command(
                    "audit-install.sh",
                    audit_command_fail_on(mode),
                    host,
                    schedule,
                    declared_json,
                    user=h["user"],
                ),
                # The module itself goes through stdin: too long to read
                # comfortably in a preview diff, so a digest stands for it in
                # the triggers.
                stdin=source,
                triggers=[source_digest, args.get("rerun_token", "")],
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.commands[host] = cmd
            reports[host] = cmd.stdout.apply(lambda out, host=host: _report(host, out, mode))

        self.reports = pulumi.Output.all(**reports) if reports else pulumi.Output.from_input({})
        self.register_outputs({"reports": self.reports})


def audit_command_fail_on(mode: str) -> str:
    """What fails the deploy-time run: critical findings when enforcing."""
    return "critical" if mode == "enforce" else "never"


def _report(host: str, stdout: str | None, mode: str) -> dict:
    if stdout is None:
        # No command ran (a mock engine without command outputs).
        return {"host": host, "ok": None}
    try:
        report = json.loads(stdout)
    except (TypeError, ValueError):
        # An unreadable report after a run is worth a warning, not a failed
        # update: the timer keeps auditing. (At preview stdout is unknown and
        # this function is not called.)
        pulumi.log.warn(f"service audit of {host}: the report was not JSON")
        return {"host": host, "ok": None, "error": "unreadable report"}
    for v in report.get("violations", []):
        # In enforce mode critical findings already failed the command.
        pulumi.log.warn(f"service audit ({mode}): {v.get('severity')}: {v.get('message')}")
    return report
