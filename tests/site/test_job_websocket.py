"""Live job progress over WebSocket: members get the current state, then the pushes; others are refused."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from fedweb.routing import websocket_urlpatterns
from jobs.models import Job, JobStatus, Task, TaskStatus
from jobs.scheduler import push_job_id
from projects.models import Partner, Project, ProjectMember, ProjectStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def job(alice):
    """A running two-party job in a project alice is a member of (bob is not)."""
    partner = Partner.objects.create(party_id="telco", name="Telco", proxy_address="127.0.0.1:9")
    project = Project.objects.create(name="p", purpose="x", partner=partner, initiator="site-1", label_holder="site-1",
                                     status=ProjectStatus.ACTIVE)
    ProjectMember.objects.create(project=project, user=alice)
    job = Job.objects.create(project=project, name="PSI", spec={}, initiator="site-1", status=JobStatus.RUNNING)
    for site, party, role in ((Task.OURS, "site-1", "guest"), (Task.PARTNER, "telco", "host")):
        Task.objects.create(job=job, node="psi", site=site, party=party, role=role, component="psi", version="1.0")
    return job


def _communicator(user, job_id):
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/jobs/{job_id}/")
    communicator.scope["user"] = user
    return communicator


async def _connect(user, job_id):
    communicator = _communicator(user, job_id)
    connected, code = await communicator.connect()
    message = await communicator.receive_json_from() if connected else None
    await communicator.disconnect()
    return connected, code, message


def test_anonymous_sockets_are_refused(job):
    connected, code, _ = async_to_sync(_connect)(AnonymousUser(), job.pk)
    assert not connected and code == 4401


def test_a_non_member_is_refused_as_if_the_job_did_not_exist(job, bob):
    connected, code, _ = async_to_sync(_connect)(bob, job.pk)
    assert not connected and code == 4404


def test_a_member_receives_the_current_state_on_connect(job, alice):
    Task.objects.filter(job=job, site=Task.OURS).update(status=TaskStatus.RUNNING, progress=0.4, stage="hashing ids")
    connected, _code, message = async_to_sync(_connect)(alice, job.pk)
    assert connected
    assert message["type"] == "job.update" and message["job"] == str(job.pk) and message["status"] == "running"
    ours = next(t for t in message["tasks"] if t["site"] == Task.OURS)
    assert ours == {"node": "psi", "site": "ours", "status": "running", "progress": 0.4, "stage": "hashing ids"}
    assert len(message["tasks"]) == 2


def test_a_site_admin_sees_any_job(job, admin):
    connected, _code, message = async_to_sync(_connect)(admin, job.pk)
    assert connected and message["job"] == str(job.pk)


def test_a_push_after_a_task_changes_reaches_the_connected_member(job, alice):
    @database_sync_to_async
    def finish_our_task():
        task = job.tasks.get(site=Task.OURS)
        task.finish(TaskStatus.SUCCEEDED)
        task.save()
        push_job_id(job.pk)

    async def scenario():
        communicator = _communicator(alice, job.pk)
        connected, _code = await communicator.connect()
        assert connected
        first = await communicator.receive_json_from()
        await finish_our_task()
        pushed = await communicator.receive_json_from()
        await communicator.disconnect()
        return first, pushed

    first, pushed = async_to_sync(scenario)()
    ours = lambda message: next(t for t in message["tasks"] if t["site"] == Task.OURS)  # noqa: E731
    assert ours(first)["status"] == "waiting"
    assert ours(pushed)["status"] == "succeeded" and ours(pushed)["progress"] == 1.0


def test_a_change_nobody_pushed_still_reaches_the_page_from_the_database(job, alice, settings):
    """Another process (a worker on the embedded default, with no shared channel layer) changed the
    task: the consumer's own re-read sends it, and sends nothing while nothing changes."""
    settings.FEDWEB_LIVE_POLL_SECONDS = 1

    async def watch():
        communicator = _communicator(alice, job.pk)
        await communicator.connect()
        first = await communicator.receive_json_from()
        quiet = await communicator.receive_nothing(timeout=1.5)
        await database_sync_to_async(
            lambda: Task.objects.filter(job=job, site=Task.OURS).update(status=TaskStatus.RUNNING, stage="epoch 2"))()
        changed = await communicator.receive_json_from(timeout=3)
        await communicator.disconnect()
        return first, quiet, changed

    first, quiet, changed = async_to_sync(watch)()
    assert quiet
    assert next(t for t in first["tasks"] if t["site"] == Task.OURS)["status"] == "waiting"
    assert next(t for t in changed["tasks"] if t["site"] == Task.OURS)["stage"] == "epoch 2"
