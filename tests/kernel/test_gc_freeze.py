"""Settings.gc_freeze_after_startup: what a service built at start-up is frozen out of the collector's scans."""

import gc


async def test_a_service_started_with_gc_freeze_freezes_and_by_default_does_not(start_service, settings):
    gc.unfreeze()
    try:
        async with start_service("accounts") as client:
            assert gc.get_freeze_count() == 0
            assert (await client.get("/openapi.json")).status_code == 200
        async with start_service("accounts", settings.model_copy(update={"gc_freeze_after_startup": True})) as client:
            assert gc.get_freeze_count() > 10_000  # the modules, models and metadata of a service
            assert (await client.get("/openapi.json")).status_code == 200
    finally:
        gc.unfreeze()  # the rest of the test session collects normally
