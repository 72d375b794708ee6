"""A Celery worker whose land-use measurement pauses after each chunk, for the
tests that kill a worker in the middle of a run: the area engine measures a
test-size survey layer in milliseconds, so without the pause there is no
"middle" to kill in. Run as ``python -m tests.faults.paced_worker <celery
worker arguments>``; FAULT_CHUNK_PAUSE_SECONDS sets the pause."""

import os
import sys
import time

from config.celery import app

PAUSE_SECONDS = float(os.environ.get("FAULT_CHUNK_PAUSE_SECONDS", "1.5"))
# The kill tests' layer holds 25,600 patches: about 7 chunks, some 10 s a run.
CHUNK_FEATURES = 4_096


def _paced(measure):
    def class_areas(*args, progress=None, **kwargs):
        def step(fraction: float) -> None:
            if progress is not None:
                progress(fraction)
            if fraction < 1.0:
                time.sleep(PAUSE_SECONDS)

        kwargs.setdefault("chunk_features", CHUNK_FEATURES)
        return measure(*args, progress=step, **kwargs)

    return class_areas


if __name__ == "__main__":
    import django

    django.setup()
    from estimation import landuse

    landuse.class_areas = _paced(landuse.class_areas)
    # Forked pool children inherit the patched module.
    app.worker_main(["worker", *sys.argv[1:]])
