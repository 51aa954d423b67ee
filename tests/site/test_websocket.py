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


# --- An account that ends while its socket is open -------------------------------------------

async def _watch_until_closed(user, dataset_id, end_account, *, session=None):
    """Connect, let ``end_account`` run, and return the close code the socket then gets."""
    from channels.db import database_sync_to_async

    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/datasets/{dataset_id}/")
    communicator.scope["user"] = user
    if session is not None:
        communicator.scope["session"] = session
    connected, _code = await communicator.connect()
    assert connected
    await communicator.receive_json_from()
    await database_sync_to_async(end_account)()
    closed = await communicator.receive_output(timeout=5)
    await communicator.disconnect()
    return closed


def test_a_deactivated_users_open_socket_closes(granted_dataset, alice, admin, settings):
    from fedweb.accounts import services

    settings.FEDWEB_LIVE_POLL_SECONDS = 0.1
    closed = async_to_sync(_watch_until_closed)(alice, granted_dataset.pk,
                                                lambda: services.deactivate(by=admin, user=alice))
    assert closed == {"type": "websocket.close", "code": 4401}


def test_a_socket_closes_when_an_admin_sets_a_new_password(granted_dataset, alice, admin, settings):
    """The new password ends the user's browser sessions; the socket a session opened goes with it."""
    from django.contrib.sessions.backends.db import SessionStore

    from fedweb.accounts import services

    settings.FEDWEB_LIVE_POLL_SECONDS = 0.1
    session = SessionStore()
    session["_auth_user_id"] = str(alice.pk)
    session.create()
    closed = async_to_sync(_watch_until_closed)(
        alice, granted_dataset.pk,
        lambda: services.set_password(by=admin, user=alice, password="a much longer new password 42"),
        session=session)
    assert closed == {"type": "websocket.close", "code": 4401}


def test_a_socket_stays_open_while_the_account_is_in_good_standing(granted_dataset, alice, settings):
    settings.FEDWEB_LIVE_POLL_SECONDS = 0.1

    async def watch():
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/datasets/{granted_dataset.pk}/")
        communicator.scope["user"] = alice
        assert (await communicator.connect())[0]
        await communicator.receive_json_from()
        quiet = await communicator.receive_nothing(timeout=0.6)
        await communicator.disconnect()
        return quiet

    assert async_to_sync(watch)()
