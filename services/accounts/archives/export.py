"""A dossier exported as a package that verifies on its own (a zip):

- ``归档文件目录.pdf`` — the catalogue: each item's number, year, type, title, decision, who decided at which level,
  retention and date; and ``备考表.pdf`` — the notes sheet: how many items, who exported it and when, the years
  sealed. Both are issued through the documents registry (numbered, with a verification code: genuine on the
  public page);
- ``items/<件号>.json`` — each item's metadata (what was decided, by whom, references, audit-chain position);
- ``documents/<number>.pdf`` — the issued documents the items reference that accounts itself issued, byte for byte;
- ``manifest.json`` — the SHA-256 of every other file. The archive keeps the SHA-256 of the manifest, so a
  presented package is checked file by file against its manifest and the manifest against what was handed out.

An export is a background job (``EXPORT``): the request is answered 202 with the job, the job writes the package
to a temporary file a file at a time and keeps its bytes (``archive_export_part``, a part at a time), and the one who exported it downloads it from the address the job's
result gives (``package_at``). The export's id is the job's.
"""

import hashlib
import json
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import IO, Any

import anyio
from sqlalchemy import Engine, func, insert, select
from sqlmodel import Session

from services.accounts.archives import service
from services.accounts.archives.models import DossierExport, DossierExportPart, DossierItem
from services.accounts.archives.retention import CLASS_LABELS, retention_of
from services.accounts.issuer import AGENCY
from services.kernel import clock, context
from services.kernel.audit import append_audit, canonical_json
from services.kernel.db import snapshot_session, unit_of_work
from services.kernel.documents.models import IssuedDocument
from services.kernel.documents.pdf import DocumentBody, Table
from services.kernel.documents.registry import DocumentKind, Subject, issue, issuing_unit
from services.kernel.documents.text import chinese_date
from services.kernel.errors import Invalid, NotFound, TooLarge
from services.kernel.jobs import JobContext, JobKind

CATALOGUE = DocumentKind(code="archive_catalogue", title="归档文件目录", prefix="社保档目字")
NOTES = DocumentKind(code="archive_notes", title="备考表", prefix="社保档备字")
MANIFEST = "manifest.json"
PART_BYTES = 1024 * 1024  # a stored package is written and read back this much at a time
SUBJECT_LABELS = {"person": "参保人员", "employer": "参保单位"}


@dataclass(frozen=True)
class Package:
    export_id: str
    size: int
    manifest_sha256: str
    package_sha256: str


def _term(item: DossierItem) -> str:
    label = CLASS_LABELS.get(item.retention_class, item.retention_class)
    return label if item.retention_years is None else f"{label}（{item.retention_years}年）"


def _heading(dossier: dict[str, Any]) -> str:
    return (f"{SUBJECT_LABELS.get(dossier['subject_type'], dossier['subject_type'])}档案："
            f"{dossier['name'] or ''}（登记号 {dossier['registration_number'] or dossier['subject_id']}）")


def catalogue_body(dossier: dict[str, Any], items: list[DossierItem]) -> DocumentBody:
    rows = [[str(i.serial), str(i.year), retention_of(i.item_type).label, i.title, i.decision,
             f"{i.decided_by}{'（' + i.level + '）' if i.level else ''}", _term(i),
             chinese_date(i.occurred_at.astimezone(clock.CHINA).date())] for i in items]
    return DocumentBody(
        addressee=None, paragraphs=[_heading(dossier), f"共 {len(items)} 件，按归档顺序排列。"],
        tables=[Table(headers=["件号", "年度", "类别", "题名", "办理结果", "办理人", "保管期限", "日期"],
                      rows=rows or [["", "", "", "无归档文件", "", "", "", ""]], widths=[2, 2, 3, 5, 6, 4, 3, 4])],
        issuer=issuing_unit(AGENCY), legal_basis=["《社会保险业务档案管理规定（试行）》"])


def notes_body(dossier: dict[str, Any], items: list[DossierItem], documents: int) -> DocumentBody:
    actor = context.current().actor
    years = sorted({i.year for i in items})
    return DocumentBody(
        addressee=None,
        paragraphs=[_heading(dossier),
                    f"本卷共 {len(items)} 件，涉及年度：{'、'.join(map(str, years)) or '无'}；"
                    f"随附本机构签发的文书 {documents} 份。",
                    "每件的元数据见 items 目录，全部文件的 SHA-256 摘要见 manifest.json；本目录和本表可在公开核验页核验。",
                    f"立卷（导出）人：{actor.id}；导出时间：{clock.china_now().strftime('%Y-%m-%d %H:%M')}。"],
        issuer=issuing_unit(AGENCY), legal_basis=["《社会保险业务档案管理规定（试行）》"])


def _documents(session: Session, items: list[DossierItem]) -> list[IssuedDocument]:
    numbers = {json.loads(i.references).get("document_number") for i in items} - {None}
    if not numbers:
        return []
    return list(session.execute(select(IssuedDocument).where(IssuedDocument.number.in_(numbers))
                                .order_by(IssuedDocument.number)).scalars())


def _safe_name(number: str) -> str:
    return number.replace("/", "-").replace("\\", "-")


def export_dossier(engine: Engine, dossier_id: str, purpose: str, *, export_id: str) -> Package:
    """Build the package and keep it (its hashes, its bytes in parts), with the export in the access register and
    the audit chain, in one transaction."""
    with snapshot_session(engine) as session:
        dossier = service.dossier_view(service.get_dossier(session, dossier_id))
        items = service.all_items(session, dossier_id)
        documents = _documents(session, items)
        for document in documents:
            _ = document.pdf  # loaded before the session closes
    catalogue = issue(engine, CATALOGUE, Subject(type="archive_dossier", id=dossier_id), catalogue_body(dossier, items))
    notes = issue(engine, NOTES, Subject(type="archive_dossier", id=dossier_id),
                  notes_body(dossier, items, len(documents)))
    head = {"export_id": export_id, "dossier_id": dossier_id, "subject_type": dossier["subject_type"],
            "registration_number": dossier["registration_number"], "exported_at": clock.utc_now().isoformat(),
            "exported_by": context.actor_id(), "item_count": len(items), "catalogue": catalogue.number,
            "notes": notes.number}
    files = chain([("归档文件目录.pdf", catalogue.pdf), ("备考表.pdf", notes.pdf)],
                  ((f"items/{i.serial:05d}.json", canonical_json(service.item_view(i)).encode()) for i in items),
                  ((f"documents/{_safe_name(d.number)}.pdf", d.pdf) for d in documents))
    with tempfile.TemporaryFile() as target:
        manifest = _write_package(target, files, lambda hashes: canonical_json(head | {"files": hashes}).encode())
        target.seek(0)
        package_sha256 = hashlib.file_digest(target, "sha256").hexdigest()  # read a part at a time
        package = Package(export_id=export_id, size=target.tell(), package_sha256=package_sha256,
                          manifest_sha256=hashlib.sha256(manifest).hexdigest())
        with unit_of_work(engine) as session:
            stored = service.get_dossier(session, dossier_id)
            session.add(DossierExport(id=export_id, dossier_id=dossier_id, manifest_sha256=package.manifest_sha256,
                                      package_sha256=package.package_sha256, item_count=len(items),
                                      exported_at=clock.utc_now(), exported_by=context.actor_id()))
            session.flush()
            for part_no, part in enumerate(_parts(target)):
                session.execute(insert(DossierExportPart.__table__).values(export_id=export_id, part_no=part_no,
                                                                           data=part))
            service.record_access(session, stored, action="export", purpose=purpose)
            append_audit(session, action="archive.exported", entity_type="archive_dossier", entity_id=dossier_id,
                         detail={"export_id": export_id, "manifest_sha256": package.manifest_sha256,
                                 "items": len(items)}, reason=purpose)
    return package


def _write_package(target: IO[bytes], files: Iterable[tuple[str, bytes]],
                   manifest: Callable[[dict[str, str]], bytes]) -> bytes:
    """``files`` zipped into ``target`` as they come (an item's metadata is made only when it is written), then the
    manifest ``manifest`` makes of their SHA-256; returns the manifest's bytes."""
    hashes: dict[str, str] = {}
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            _add(archive, name, data)
            hashes[name] = hashlib.sha256(data).hexdigest()
        written = manifest(dict(sorted(hashes.items())))
        _add(archive, MANIFEST, written)
    return written


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    archive.writestr(zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0)), data, compress_type=zipfile.ZIP_DEFLATED)


def _parts(target: IO[bytes]) -> Iterator[bytes]:
    target.seek(0)
    while part := target.read(PART_BYTES):
        yield part


# -- as a background job: a dossier of thousands of items renders a long catalogue, more than a request may take --

def _summary(export: DossierExport, size: int) -> dict[str, Any]:
    return {"export_id": export.id, "dossier_id": export.dossier_id, "items": export.item_count, "bytes": size,
            "manifest_sha256": export.manifest_sha256, "package_sha256": export.package_sha256,
            "package_at": f"/archives/exports/{export.id}/package"}


def _export(engine: Engine, job_id: str, params: dict[str, Any]) -> dict[str, Any]:
    # The export's id is the job's: a job resumed after its process died once the export was stored finds it.
    with snapshot_session(engine) as session:
        done = session.get(DossierExport, job_id)
        if done is not None:
            return _summary(done, _stored_bytes(session, job_id))
    package = export_dossier(engine, params["dossier_id"], params["purpose"], export_id=job_id)
    with snapshot_session(engine) as session:
        return _summary(session.get(DossierExport, job_id), package.size)


async def _export_step(ctx: JobContext) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(_export, ctx.engine, ctx.job.id, ctx.params)


EXPORTERS = frozenset({"agency_clerk", "agency_reviewer", "agency_approver", "internal_auditor"})
EXPORT = JobKind(name="accounts.archive_export", submitters=EXPORTERS, readers=frozenset(), run_async=_export_step)


def _stored_bytes(session: Session, export_id: str) -> int:
    return session.execute(select(func.coalesce(func.sum(func.length(DossierExportPart.data)), 0))
                           .where(DossierExportPart.export_id == export_id)).scalar_one()


def downloadable(session: Session, export_id: str) -> DossierExport:
    """The export, for the one who exported it (the purpose in the access register is theirs); 404 for anyone else,
    as for an export that does not exist."""
    export = session.get(DossierExport, export_id)
    if export is None or export.exported_by != context.actor_id():
        raise NotFound("ARCHIVE_EXPORT_NOT_FOUND", f"档案导出 {export_id} 不存在")
    return export


def package_parts(engine: Engine, export_id: str) -> Iterator[bytes]:
    """The package's bytes, a part at a time (never the whole package in memory)."""
    with snapshot_session(engine) as session:
        yield from session.execute(select(DossierExportPart.data).where(DossierExportPart.export_id == export_id)
                                   .order_by(DossierExportPart.part_no).execution_options(yield_per=4)).scalars()


# -- verification ----------------------------------------------------------------------------------------------------

MAX_UNPACKED_BYTES = 4 * 1024 * 1024 * 1024  # what a package may expand to: a zip bomb is refused before it is read


def _read_package(package: IO[bytes]) -> tuple[dict[str, Any], bytes, dict[str, str]]:
    """(manifest, its bytes, the SHA-256 of every other file), each file hashed as it is read from the zip a part at a
    time: a large package is never whole in memory."""
    try:
        with zipfile.ZipFile(package) as archive:
            files = [info for info in archive.infolist() if not info.is_dir()]
            if sum(info.file_size for info in files) > MAX_UNPACKED_BYTES:
                raise TooLarge("ARCHIVE_PACKAGE_TOO_LARGE",
                               f"档案包解压后超过 {MAX_UNPACKED_BYTES // (1024 * 1024 * 1024)} GiB")
            manifest = archive.read(MANIFEST) if MANIFEST in archive.namelist() else None
            hashes = {info.filename: _sha256_of(archive, info) for info in files if info.filename != MANIFEST}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise Invalid("ARCHIVE_PACKAGE_INVALID", f"不是有效的档案包（zip）：{exc}") from None
    return _manifest(manifest), manifest or b"", hashes


def _sha256_of(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    digest = hashlib.sha256()
    with archive.open(info) as stream:
        while part := stream.read(PART_BYTES):
            digest.update(part)
    return digest.hexdigest()


def _manifest(data: bytes | None) -> dict[str, Any]:
    try:
        manifest = json.loads(data or b"")
        assert isinstance(manifest.get("files"), dict)
        return manifest
    except (ValueError, AssertionError, AttributeError):
        raise Invalid("ARCHIVE_PACKAGE_INVALID", "档案包缺少可读的 manifest.json（文件清单及 SHA-256 摘要）") from None


def verify_package(session: Session, package: IO[bytes]) -> dict[str, Any]:
    """``genuine``: every file is the manifest's and the manifest is the one handed out; ``altered``: a file or
    the manifest differs (named); ``unknown``: a package this archive never exported."""
    manifest, manifest_bytes, hashes = _read_package(package)
    listed: dict[str, str] = manifest["files"]
    altered = sorted(n for n, h in listed.items() if n in hashes and hashes[n] != h)
    missing = sorted(n for n in listed if n not in hashes)
    extra = sorted(n for n in hashes if n not in listed)
    export = session.execute(select(DossierExport).where(
        DossierExport.manifest_sha256 == hashlib.sha256(manifest_bytes).hexdigest())).scalar_one_or_none()
    manifest_altered = False
    if export is None:
        export = session.get(DossierExport, str(manifest.get("export_id", "")))
        if export is None:
            return {"result": "unknown", "altered_files": altered, "missing_files": missing, "extra_files": extra}
        manifest_altered = True
    genuine = not (altered or missing or extra or manifest_altered)
    return {"result": "genuine" if genuine else "altered", "export_id": export.id, "dossier_id": export.dossier_id,
            "altered_files": altered, "missing_files": missing, "extra_files": extra,
            "manifest_altered": manifest_altered}
