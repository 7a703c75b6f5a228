"""The archive's background jobs (services/kernel/jobs.py): the yearly seal, the backfill of acts done before the
archive existed, and dossier exports."""

from services.accounts.archives.backfill import BACKFILL
from services.accounts.archives.export import EXPORT
from services.accounts.archives.seals import YEAR_SEAL

ARCHIVE_JOBS = (YEAR_SEAL, BACKFILL, EXPORT)
