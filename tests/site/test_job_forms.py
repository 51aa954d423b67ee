"""The new-job form is made from the components' schemas; it builds the spec the engine validates,
refuses bad settings with words, retunes with the job's values and starts sweeps."""

from __future__ import annotations

import pytest

from jobs import estimate, forms, pipelines, sweeps
from jobs import spec as specs
from jobs.models import Job, JobStatus, Sweep, Task, TaskStatus
from tests.site.job_scene import PARTNER_TABLE, job_project

pytestmark = pytest.mark.django_db

SPEED = estimate.Speed(encrypt=3000, add=150_000, psi_ids=15_000, keygen=1.0)


@pytest.fixture(autouse=True)
def _known_speed(monkeypatch):
    """The measured speed of a fixed machine, so estimates are the same on every run."""
    monkeypatch.setattr(estimate, "site_speed", lambda refresh=False: SPEED)


@pytest.fixture
def scene(admin, alice, vera, make_dataset, settings):
    project, dataset = job_project(admin=admin, members=[alice, vera], make_dataset=make_dataset, settings=settings)
    return project, dataset


def _defaults(form) -> dict:
    """What a browser posts when the user changes nothing: every field's initial value."""
    data = {"name": form.head.fields["name"].initial or "Job", "our_table": form.our_tables[0][0],
            "partner_table": form.partner_tables[0][0]}
    for step in form.steps:
        if step.step.optional and step.step.default_on:
            data[f"{step.step.id}-include"] = "on"
        for name in step.main + step.more:
            value = step.get_initial_for_field(step.fields[name], name)
            if value is None or value is False:
                continue
            data[f"{step.step.id}-{name}"] = "on" if value is True else str(value)
    return data


def _lr_form(project, **changes):
    blank = forms.PipelineForm("lr", project)
    data = {k: v for k, v in {**_defaults(blank), **changes}.items() if v is not None}
    return forms.PipelineForm("lr", project, data), data


def test_settings_are_fields_with_the_components_bounds_choices_and_defaults_in_words(scene):
    project, _dataset = scene
    form = forms.PipelineForm("lr", project)
    lr = next(s for s in form.steps if s.step.id == "lr")
    assert lr.main[:2] == ["learning_rate", "max_epochs"]
    assert lr.fields["max_epochs"].initial == 10  # the template's default, not the component's 30
    assert lr.fields["max_epochs"].min_value == 1
    reveal = lr.fields["validation_reveal"]
    assert dict(reveal.choices)["loss_only"].startswith("Loss only")
    assert "partial scores" in reveal.help_text and "Privacy" in reveal.help_text
    assert "Default:" in lr.fields["learning_rate"].help_text
    # Nothing an analyst cannot meaningfully set is shown: ids, labels, columns, test-only switches.
    shown = {name for step in form.steps for name in step.fields}
    assert not shown & {"id_column", "label_column", "feature_columns", "insecure_allow_small_keys", "checkpoint_dir"}


@pytest.mark.parametrize("template, step", [("lr", "lr"), ("secureboost", "boost")])
def test_the_encryption_scheme_is_a_choice_in_words(scene, template, step):
    project, _dataset = scene
    form = forms.PipelineForm(template, project)
    found = next(s for s in form.steps if s.step.id == step)
    choices = dict(found.fields["he_scheme"].choices)
    assert choices["paillier"].startswith("Paillier — ") and choices["ou"].startswith("Okamoto–Uchiyama — the same security")
    assert found.fields["he_scheme"].initial == "ou"  # the default the benchmarks chose


@pytest.mark.parametrize("template", ["psi", "lr", "secureboost"])
def test_the_psi_protocol_is_a_choice_in_words_with_its_privacy_note(scene, template):
    project, _dataset = scene
    form = forms.PipelineForm(template, project)
    psi = next(s for s in form.steps if s.step.id == "psi")
    assert "protocol" in psi.main
    field = psi.fields["protocol"]
    choices = dict(field.choices)
    assert choices["ecdh"].startswith("ECDH — ") and choices["rr22"].startswith("RR22 (oblivious transfer) — ")
    assert field.initial == "ecdh"
    assert "smallest overlap" in field.help_text and "Privacy" in field.help_text


def test_the_default_form_builds_a_spec_both_sites_validate(scene, alice, client_as):
    project, dataset = scene
    form, data = _lr_form(project)
    assert form.is_valid(), [f.errors for f in form.steps] + [form.head.errors]
    spec = form.spec()
    plan = specs.validate(spec, project)
    assert plan.order == ["psi", "split", "scale", "scale_validate", "binning", "selection", "lr", "predict", "evaluation"]
    lr = plan.node("lr")
    assert lr.inputs["validate"].node == "scale_validate"  # per-epoch validation on rows prepared the same way

    response = client_as(alice).post(f"/projects/{project.pk}/jobs/new/?template=lr", data)
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.spec == spec and job.template == "lr" and job.created_by == alice
    assert job.estimate_seconds == pytest.approx(estimate.for_spec(spec, project).seconds)


def test_steps_can_be_skipped_or_added_and_a_step_without_what_it_needs_is_refused(scene):
    project, _dataset = scene
    form, _data = _lr_form(project, **{"scale-include": None, "binning-include": None, "selection-include": None,
                                       "statistics-include": "on", "scorecard-include": "on"})
    assert form.is_valid()
    plan = specs.validate(form.spec(), project)
    assert plan.order == ["psi", "split", "statistics", "lr", "predict", "scorecard", "evaluation"]
    assert plan.node("lr").inputs["data"].node == "split"

    form, _data = _lr_form(project, **{"binning-include": None})
    assert not form.is_valid()
    selection = next(s for s in form.steps if s.step.id == "selection")
    assert "needs the step" in str(selection.non_field_errors())


def test_bad_settings_are_refused_in_words_and_nothing_is_started(scene, alice, client_as):
    project, _dataset = scene
    _form, data = _lr_form(project)
    for field, value, words in [("lr-learning_rate", "0", "more than 0"), ("lr-max_epochs", "0", "greater than or equal to 1"),
                                ("lr-learning_rate", "fast", "Enter a number"),
                                ("split-validation_fraction", "1", "less than 1"),
                                ("lr-validation_reveal", "everything", "Select a valid choice")]:
        response = client_as(alice).post(f"/projects/{project.pk}/jobs/new/?template=lr", {**data, field: value})
        assert response.status_code == 200
        assert words in response.content.decode(), field
    # A table that is not authorised in the project (a tampered form) is refused the same way.
    response = client_as(alice).post(f"/projects/{project.pk}/jobs/new/?template=lr", {**data, "partner_table": "nope"})
    assert "Select a valid choice" in response.content.decode()
    assert not Job.objects.exists()


def test_viewers_cannot_open_the_form_and_outsiders_do_not_see_the_project(scene, vera, bob, client_as):
    project, _dataset = scene
    assert client_as(vera).get(f"/projects/{project.pk}/jobs/new/?template=lr").status_code == 403
    assert client_as(bob).get(f"/projects/{project.pk}/jobs/new/?template=lr").status_code == 404


def test_the_preview_draws_the_chosen_steps_and_estimates_from_the_tables_and_the_sites_speed(scene, alice, client_as):
    project, _dataset = scene
    _form, data = _lr_form(project, **{"binning-include": None, "selection-include": None})
    page = client_as(alice).post(f"/projects/{project.pk}/jobs/preview/?template=lr", data).content.decode()
    assert 'data-node="lr"' in page and 'data-node="binning"' not in page
    assert "Estimated run time" in page
    _form, data = _lr_form(project, **{"lr-learning_rate": "-1"})
    page = client_as(alice).post(f"/projects/{project.pk}/jobs/preview/?template=lr", data).content.decode()
    assert "Complete the form" in page


def test_the_estimate_grows_with_rows_epochs_and_key_size(scene):
    project, dataset = scene
    spec = pipelines.build("lr", project, our_table=str(dataset.pk), partner_table=PARTNER_TABLE)
    small = estimate.estimate(spec, estimate.Shape(1000, 1000, 5, 5), SPEED)
    big = estimate.estimate(spec, estimate.Shape(100_000, 100_000, 5, 5), SPEED)
    assert big.seconds > 20 * small.seconds / 2
    longer = pipelines.build("lr", project, our_table=str(dataset.pk), partner_table=PARTNER_TABLE,
                             values={"lr": {"max_epochs": 20}})
    assert estimate.estimate(longer, big.shape, SPEED).per_node["lr"] > 1.8 * big.per_node["lr"]
    stronger = pipelines.build("lr", project, our_table=str(dataset.pk), partner_table=PARTNER_TABLE,
                               values={"lr": {"key_bits": 4096}})
    assert estimate.estimate(stronger, big.shape, SPEED).per_node["lr"] > 5 * big.per_node["lr"]
    paillier = pipelines.build("lr", project, our_table=str(dataset.pk), partner_table=PARTNER_TABLE,
                               values={"lr": {"he_scheme": "paillier"}})
    assert big.per_node["lr"] == pytest.approx(  # Okamoto-Uchiyama, the default; NODE_OVERHEAD is not scaled
        estimate.estimate(paillier, big.shape, SPEED).per_node["lr"] / estimate.OU_SPEEDUP, rel=0.01)
    # The LR benchmark of docs/benchmarks.md at its machine's speed: one epoch, 100,000 x (10 + 20).
    bench = {"id": "lr", "component": "hetero_lr", "params": {"common": {"max_epochs": 1, "he_scheme": "paillier"}},
             "inputs": {}}
    seconds = estimate.node_seconds(bench, estimate.Shape(100_000, 100_000, 10, 20),
                                    estimate.Speed(encrypt=2883, add=136_572, psi_ids=15_658, keygen=1.0),
                                    validation_fraction=0.0)
    assert 94 / 2 < seconds < 103 * 2


def test_the_sites_speed_is_measured_once_and_kept(settings, monkeypatch):
    calls = []
    monkeypatch.undo()  # the real site_speed, with a fake measurement
    monkeypatch.setattr(estimate, "measure", lambda: calls.append(1) or SPEED)
    assert estimate.site_speed() == SPEED and estimate.site_speed() == SPEED
    assert len(calls) == 1
    (settings.ARTIFACT_DIR / estimate.SPEED_FILE).write_text("not json")
    assert estimate.site_speed() == SPEED and len(calls) == 2  # a damaged file is measured again


def _finished(job: Job) -> Job:
    """Mark every task of ``job`` done, with an evaluation report, as a run would leave it."""
    for task in job.tasks.all():
        task.status = TaskStatus.SUCCEEDED
        if task.component == "evaluation":
            task.metrics = {"final": {"data": {"auc": 0.8, "ks": 0.5}}}
        task.save()
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    return Job.objects.get(pk=job.pk)


def test_retuning_opens_with_the_jobs_values_and_reuses_what_the_change_does_not_touch(scene, alice, client_as):
    project, _dataset = scene
    form, data = _lr_form(project, **{"lr-learning_rate": "0.3"})
    client_as(alice).post(f"/projects/{project.pk}/jobs/new/?template=lr", data)
    job = _finished(Job.objects.get())
    page = client_as(alice).get(f"/jobs/{job.pk}/rerun/").content.decode()
    assert 'value="0.3"' in page
    retune = forms.PipelineForm("lr", project, job=job)
    posted = {**_defaults(retune), "lr-learning_rate": "0.05", "name": "LR slower"}
    preview = client_as(alice).post(f"/projects/{project.pk}/jobs/preview/?template=lr&job={job.pk}", posted).content.decode()
    for node in ("psi", "split", "scale", "binning", "selection"):
        assert f'data-reused="{node}"' in preview
    assert 'data-reused="lr"' not in preview and 'data-reused="evaluation"' not in preview

    response = client_as(alice).post(f"/jobs/{job.pk}/rerun/", posted)
    assert response.status_code == 302
    rerun = Job.objects.exclude(pk=job.pk).get()
    assert rerun.rerun_of == job and rerun.name == "LR slower"
    lr = next(n for n in rerun.spec["nodes"] if n["id"] == "lr")
    assert lr["params"]["common"]["learning_rate"] == 0.05
    assert [n for n in rerun.spec["nodes"] if n["id"] != "lr"] == [n for n in job.spec["nodes"] if n["id"] != "lr"]


def test_a_sweep_starts_one_job_per_value_and_compares_them(scene, alice, client_as):
    project, _dataset = scene
    _form, data = _lr_form(project)
    client_as(alice).post(f"/projects/{project.pk}/jobs/new/?template=lr", data)
    job = _finished(Job.objects.get())
    client = client_as(alice)
    page = client.post(f"/jobs/{job.pk}/sweep/", {"param1": "lr:learning_rate", "values1": "0.05, fast"}).content.decode()
    assert "is not a valid value" in page and Job.objects.count() == 1
    page = client.post(f"/jobs/{job.pk}/sweep/", {"param1": "lr:learning_rate", "values1": "0.05"}).content.decode()
    assert "at least two" in page
    response = client.post(f"/jobs/{job.pk}/sweep/", {"param1": "lr:learning_rate", "values1": "0.05，0.1, 0.2"})
    assert response.status_code == 302
    sweep = Sweep.objects.get()
    rates = sorted(next(n for n in j.spec["nodes"] if n["id"] == "lr")["params"]["common"]["learning_rate"]
                   for j in sweep.jobs.all())
    assert rates == [0.05, 0.1, 0.2]
    assert all(j.rerun_of == job for j in sweep.jobs.all())
    for number, started in enumerate(sweep.jobs.order_by("created_at")):
        _finished(started)
        Task.objects.filter(job=started, component="evaluation", site=Task.OURS).update(
            metrics={"final": {"data": {"auc": 0.7 + number / 100, "ks": 0.4}}})
    rows = sweeps.comparison(sweep)
    assert [r["best"] for r in rows] == [False, False, True]
    page = client.get(f"/jobs/sweeps/{sweep.pk}/").content.decode()
    assert page.count('data-testid="sweep-row"') == 3 and 'data-best="1"' in page and "0.7200" in page


def test_the_job_page_shows_both_halves_and_the_buttons_each_person_may_use(scene, alice, vera, client_as):
    project, _dataset = scene
    _form, data = _lr_form(project)
    client_as(alice).post(f"/projects/{project.pk}/jobs/new/?template=lr", data)
    job = Job.objects.get()
    Task.objects.filter(job=job, node="psi", site=Task.OURS).update(status=TaskStatus.RUNNING, progress=0.4,
                                                                     stage="hashing ids")
    page = client_as(alice).get(f"/jobs/{job.pk}/").content.decode()
    assert 'data-task="psi:ours"' in page and 'data-task="psi:partner"' in page and "hashing ids" in page
    assert 'data-action="cancel"' in page and "estimated" in page
    viewer = client_as(vera).get(f"/jobs/{job.pk}/").content.decode()
    assert 'data-action="cancel"' not in viewer
    assert client_as(alice).get(f"/jobs/{job.pk}/nodes/psi/log/").status_code == 200


def test_the_partners_admin_sees_what_an_incoming_job_would_read_and_approves_or_refuses(scene, admin, client_as):
    project, dataset = scene
    spec = pipelines.build("lr", project, our_table=str(dataset.pk), partner_table=PARTNER_TABLE)
    job = Job.objects.create(project=project, name="Their LR", template="lr", spec=spec, initiator="telco",
                             created_by_name="carol", status=JobStatus.APPROVAL)
    page = client_as(admin).get(f"/jobs/{job.pk}/").content.decode()
    assert 'data-testid="approval"' in page and "Applicants" in page and "carol at Telco" in page
    assert "Train the logistic regression" in page
    response = client_as(admin).post(f"/jobs/{job.pk}/refuse/", {"reason": "not this quarter"})
    assert response.status_code == 302
    page = client_as(admin).get(f"/jobs/{job.pk}/").content.decode()
    assert "admin at" in page and "refused the job: not this quarter" in page
    assert 'data-testid="approval"' not in page


def test_estimates_learn_from_how_long_this_sites_jobs_took(scene):
    import datetime as dt

    from django.utils import timezone

    project, dataset = scene
    assert estimate.history_factor() == 1.0
    spec = pipelines.build("psi", project, our_table=str(dataset.pk), partner_table=PARTNER_TABLE)
    now = timezone.now()
    for took, estimated in ((20, 10), (30, 10), (25, 10), (400, 10)):  # one outlier: the median ignores it
        Job.objects.create(project=project, name="done", spec=spec, initiator="site-1", status=JobStatus.SUCCEEDED,
                           estimate_seconds=estimated, accepted_at=now - dt.timedelta(seconds=took), finished_at=now)
    assert estimate.history_factor() == pytest.approx(2.75)
    Job.objects.update(estimate_seconds=1)
    assert estimate.history_factor() == 3.0  # kept within bounds whatever happened


def test_a_reruns_estimate_leaves_out_the_steps_it_reuses(scene, alice, client_as):
    from jobs import display

    project, _dataset = scene
    _form, data = _lr_form(project)
    client_as(alice).post(f"/projects/{project.pk}/jobs/new/?template=lr", data)
    job = _finished(Job.objects.get())
    retune = forms.PipelineForm("lr", project, job=job)
    client_as(alice).post(f"/jobs/{job.pk}/rerun/", {**_defaults(retune), "lr-learning_rate": "0.05"})
    rerun = Job.objects.exclude(pk=job.pk).get()
    full = estimate.for_spec(rerun.spec, project)
    kept = sum(full.per_node[n] for n in ("lr", "predict", "evaluation"))
    assert rerun.estimate_seconds == pytest.approx(full.seconds - (sum(full.per_node.values()) - kept))
    assert display._reused_from_original(rerun) == {"psi", "split", "scale", "scale_validate", "binning", "selection"}


def test_a_site_admin_sets_the_projects_job_settings_on_its_page(scene, admin, alice, client_as):
    from fedweb.audit.models import AuditEvent

    project, _dataset = scene
    page = client_as(admin).get(f"/projects/{project.pk}/").content.decode()
    assert 'data-testid="job-settings"' in page
    assert 'data-testid="job-settings"' not in client_as(alice).get(f"/projects/{project.pk}/").content.decode()
    response = client_as(admin).post(f"/projects/{project.pk}/job-settings/",
                                     {"approve_partner_jobs": "on", "gate_decider": "partner_admin"})
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.approve_partner_jobs and project.gate_decider == "partner_admin"
    assert AuditEvent.objects.filter(action="project_job_settings").count() == 1
    client_as(alice).post(f"/projects/{project.pk}/job-settings/", {"gate_decider": "initiator"})
    project.refresh_from_db()
    assert project.gate_decider == "partner_admin"  # analysts cannot change them


def test_graph_titles_are_cut_to_the_box_width_counting_chinese_characters_double():
    from frontend.templatetags.fedweb import fit_width

    assert fit_width("Find the overlap", 15) == "Find the overlap"
    assert fit_width("Bin the features and measure their strength", 15).endswith("…")
    assert len(fit_width("分箱并衡量特征强度（WOE、IV 值）", 10)) <= 11


def test_the_scoring_form_offers_only_published_versions_and_says_where_to_publish_one(scene, alice, client_as):
    from django.utils import timezone

    from jobs import artifacts
    from jobs.models import JobStatus, Model, model_id

    project, dataset = scene
    page = client_as(alice).get(f"/projects/{project.pk}/jobs/new/?template=score").content.decode()
    assert 'data-testid="no-published-model"' in page and f"/projects/{project.pk}/models/" in page
    form, _data = _lr_form(project)
    assert form.is_valid()
    trained = Job.objects.create(project=project, name="Credit risk", spec=form.spec(), initiator="site-1",
                                 status=JobStatus.SUCCEEDED, model_name="Credit risk", model_number=1)
    draft = Model.objects.create(id=model_id(trained.pk, "lr"), project=project, job=trained, node="lr",
                                 component="hetero_lr", version="1.0.0", role="guest", name="Credit risk", number=1,
                                 artifact=artifacts.store("model", {"x": 1}))
    assert 'data-testid="no-published-model"' in client_as(alice).get(
        f"/projects/{project.pk}/jobs/new/?template=score").content.decode()
    Model.objects.filter(pk=draft.pk).update(consent_here_at=timezone.now(), consent_partner_at=timezone.now())
    page = client_as(alice).get(f"/projects/{project.pk}/jobs/new/?template=score").content.decode()
    assert "Credit risk · v1" in page and 'data-testid="no-published-model"' not in page
