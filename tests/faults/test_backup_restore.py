"""Backup, wipe (the database dropped and made again empty, MEDIA_ROOT
emptied), restore: the ledger verifies, the certificate still verifies, run
fingerprints match, and an issuance (which re-hashes the land-cover file)
still works."""

import shutil
import time

import pytest

pytestmark = pytest.mark.production_stack

RESTORE_BOUND_SECONDS = 60.0


def test_backup_wipe_restore(stack, tmp_path):
    # The Bijie demo: registered projects, runs, issued batches, a retirement
    # certificate; computed in-process (no broker).
    stack.manage("load_bijie_demo", timeout=300, REDIS_URL="")
    before = stack.django("backup_snapshot")
    assert before["certificates"] and all(before["certificates"].values())
    assert before["runs"]
    assert any(stack.media.rglob("*.tif"))

    backup = tmp_path / "backup"
    stack.manage("backup", str(backup), timeout=300)

    # The disaster: no database, no media.
    wiped = time.monotonic()
    stack.cluster.drop_database(stack.database)
    stack.cluster.create_database(stack.database)
    shutil.rmtree(stack.media)
    stack.media.mkdir()
    stack.manage("restore", str(backup), "--no-input", timeout=300)
    restored_in = time.monotonic() - wiped
    assert restored_in < RESTORE_BOUND_SECONDS, restored_in

    after = stack.django("backup_snapshot")
    assert after == before
    for then, now in after["runs"].values():
        assert then == now  # every run's inputs still fingerprint the same
    stack.verify_ledger()
    issued = stack.django("issue_next_period")
    assert issued["status"] == "issued" and issued["quantity"] > 0
    stack.verify_ledger()
    print(f"backup/restore: restored in {restored_in:.1f}s, nothing lost")
