"""Live dataset status over WebSocket: anonymous refused, invisible datasets look missing."""

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from fedweb.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)


async def _connect(user, dataset_id):
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/datasets/{dataset_id}/")
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    message = await communicator.receive_json_from() if connected else None
    await communicator.disconnect()
    return connected, code, message


def test_the_owner_receives_the_current_status_on_connect(granted_dataset, alice):
    connected, _code, message = async_to_sync(_connect)(alice, granted_dataset.pk)
    assert connected
    assert message["status"] == "ready" and message["id"] == str(granted_dataset.pk)


def test_an_analyst_without_a_grant_is_refused_as_if_it_did_not_exist(granted_dataset, bob):
    connected, code, _ = async_to_sync(_connect)(bob, granted_dataset.pk)
    assert not connected and code == 4404


def test_anonymous_sockets_are_refused(granted_dataset):
    connected, code, _ = async_to_sync(_connect)(AnonymousUser(), granted_dataset.pk)
    assert not connected and code == 4401
