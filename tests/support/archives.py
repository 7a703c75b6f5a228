"""Helpers of the electronic archive's tests: a package's files, a package rebuilt from changed files, and the
archive item lines a service would file."""

import io
import zipfile
from datetime import datetime

from services.contracts.archives import ArchiveItemLine
from tests.support.e2e import eventually
from tests.support.registry import REGION, make_citizen_id

PURPOSE = {"purpose": "核查参保及待遇档案材料"}


def zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def unzipped(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


async def export_package(client, dossier_id: str, headers: dict[str, str], prefix: str = "") -> tuple[bytes, dict]:  # noqa: ANN001
    """Export a dossier as its job does (202, poll the job, download from ``package_at``); ``prefix`` is the gateway's
    (``/api/accounts``) when ``client`` is the gateway. Returns the package and the job's result."""
    accepted = await client.post(f"{prefix}/archives/dossiers/{dossier_id}/exports", params=PURPOSE, headers=headers)
    assert accepted.status_code == 202, accepted.text
    done = await eventually(lambda: client.get(accepted.headers["location"], headers=headers),
                            lambda r: r.json()["status"] in ("succeeded", "failed"), timeout=60)
    assert done.json()["status"] == "succeeded", done.text
    result = done.json()["result"]
    package = await client.get(f"{prefix}{result['package_at']}", headers=headers)
    assert package.status_code == 200, package.text
    assert package.headers["x-package-sha256"] == result["package_sha256"]
    return package.content, result


def archive_line(serial: int, item_type: str, act_id: str, at: datetime, **references: str) -> ArchiveItemLine:
    """A benefits act filed into person ``p-<serial>``'s dossier in the test region, decided at 复核."""
    return ArchiveItemLine(
        source="benefits", subject_type="person", subject_id=f"p-{serial}", item_type=item_type, act_id=act_id,
        title=f"{item_type} {serial}", decision="同意", decided_by="reviewer.wu", decided_role="agency_reviewer",
        references=references, audit_seq=serial, audit_hash=f"{serial:064x}", occurred_at=at.isoformat(),
        registration_number=make_citizen_id(200 + serial), subject_name=f"参保人{serial}", region=REGION)
