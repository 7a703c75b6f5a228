"""``make fuzz``: the long fuzz run over all five OpenAPI documents, on a throw-away SQLite platform and nats-server.

    FUZZ_EXAMPLES=200 make fuzz          # examples per operation and generation mode (default 50)
    FUZZ_COMPONENTS=benefits,gateway     # a subset of documents (default: all five)
    FUZZ_OUTPUT=var/fuzz/findings.json   # where the findings go (default)

Writes the findings file (summary, every failing operation with one reproducing request, per-operation statuses)
and exits 1 when there is any server error or schema violation.
"""

import json
import os
import sys
import tempfile
from pathlib import Path

from services.kernel.auth import generate_key_pair
from services.kernel.settings import Settings
from sifund.natsd import NatsServer
from tests.fuzz.harness import COMPONENTS, Campaign, OperationResult, Platform


def main() -> int:
    examples = int(os.environ.get("FUZZ_EXAMPLES", "50"))
    components = tuple(c for c in os.environ.get("FUZZ_COMPONENTS", ",".join(COMPONENTS)).split(",") if c)
    output = Path(os.environ.get("FUZZ_OUTPUT", "var/fuzz/findings.json"))
    output.parent.mkdir(parents=True, exist_ok=True)

    def progress(result: OperationResult) -> None:
        failed = sum(f["count"] for f in result.failures.values())
        mark = f"  {failed} FAILED" if failed else ""
        print(f"{result.component:10} {result.operation:70} {result.requests:5} requests{mark}", flush=True)

    with tempfile.TemporaryDirectory(prefix="sifund-fuzz-") as tmp:
        work = Path(tmp)
        private_key, public_key = generate_key_pair()
        nats = NatsServer(work / "nats").start()
        try:
            settings = Settings(
                data_dir=work / "var", nats_url=nats.url, jwt_private_key=private_key, jwt_public_key=public_key,
                consumer_retry_delay_seconds=0.05, outbox_poll_seconds=0.05, log_level="WARNING",
                **{f"{n}_database_url": f"sqlite:///{work / f'{n}.db'}" for n in COMPONENTS},
            )
            campaign = Campaign(examples=examples)
            with Platform(settings, nats_monitor_url=nats.monitor_url) as platform:
                campaign.run(platform, components, progress=progress)
        finally:
            nats.stop()
    findings = campaign.as_dict()
    output.write_text(json.dumps(findings, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    print(f"\n{findings['operations']} operations, {findings['requests']} requests in {findings['seconds']} s: "
          f"{findings['server_errors']} server errors, {findings['schema_violations']} schema violations "
          f"-> {output}")
    for failure in findings["failures"]:
        print(f"  {failure['component']} {failure['operation']}: {failure['check']} ({failure['status']}) "
              f"x{failure['count']}")
    return 1 if findings["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
