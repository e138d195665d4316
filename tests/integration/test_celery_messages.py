"""The worker refuses Celery messages that are not JSON and keeps delivering."""

from __future__ import annotations

import pytest
from celery import Celery

from tests.integration.conftest import Relay, wait_until
from tests.integration.test_faults import delivered_ids, purchases
from worker.app import celery_config
from worker.emulator import EmulatorClient
from worker.producer import enqueue_many
from worker.settings import Settings

pytestmark = pytest.mark.integration


def test_pickle_message_is_refused_and_worker_keeps_going(
    relay: Relay, emulator_client: EmulatorClient
) -> None:
    """A pickle-bodied relay.drain message is rejected; later events are still delivered."""
    settings = Settings(redis_url=relay.env["CIO_REDIS_URL"], redis_prefix=relay.prefix)
    sender = Celery("attacker")
    sender.conf.update(celery_config(settings))
    sender.conf.update(accept_content=["json", "pickle"])
    sender.send_task("relay.drain", serializer="pickle")
    wait_until(
        lambda: "untrusted content of type pickle" in relay.logs(),
        30,
        "the worker to refuse the message",
    )
    enqueue_many(relay.redis, purchases(20, "after-pickle"), prefix=relay.prefix)
    wait_until(lambda: len(delivered_ids(emulator_client)) == 20, 60, "later events")
    assert all(p.poll() is None for p in relay.procs), "a relay process died"
