"""Helpers of the electronic archive's tests: a package's files, and a package rebuilt from changed files."""

import io
import zipfile

from tests.support.e2e import eventually

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
