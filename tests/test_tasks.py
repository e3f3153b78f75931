import pytest
from huey import MemoryHuey, SqliteHuey
from huey.exceptions import TaskLockedException

from api import tasks


@pytest.mark.parametrize("storage", ["sqlite", "memory"])
def test_task_locks_hold_on_each_storage(tmp_path, storage):
    """Huey's SQLite storage refuses a lock with an expiry: every run of the related-lists task
    failed on the embedded default before the lock asked for one only where it is kept."""
    queue = (
        SqliteHuey("locks", filename=str(tmp_path / "tasks.db"))
        if storage == "sqlite"
        else MemoryHuey("locks")
    )
    with tasks.task_lock(queue, "refresh-related"):
        second = tasks.task_lock(queue, "refresh-related")
        with pytest.raises(TaskLockedException):
            second.acquire()
    with tasks.task_lock(queue, "refresh-related"):
        pass
