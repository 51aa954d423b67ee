import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def split_suspensions(apps, schema_editor):
    """A project suspended before this change was suspended by whoever last changed its status."""
    Project = apps.get_model("projects", "Project")
    for project in Project.objects.filter(status="suspended"):
        if project.status_changed_by == settings.SITE_PARTY_ID:
            project.suspended_here = True
        else:
            project.suspended_by_partner = True
        project.save(update_fields=["suspended_here", "suspended_by_partner"])


def add_creators_as_members(apps, schema_editor):
    """Whoever created a project keeps seeing it."""
    Project = apps.get_model("projects", "Project")
    ProjectMember = apps.get_model("projects", "ProjectMember")
    for project in Project.objects.exclude(created_by=None):
        ProjectMember.objects.get_or_create(project=project, user_id=project.created_by_id)


class Migration(migrations.Migration):

    dependencies = [
        ('projects', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='project',
            name='suspended_by_partner',
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name='project',
            name='suspended_here',
            field=models.BooleanField(default=False),
        ),
        migrations.CreateModel(
            name='ProjectMember',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('added_at', models.DateTimeField(auto_now_add=True)),
                ('added_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='members', to='projects.project')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='project_memberships', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['user__username'],
                'constraints': [models.UniqueConstraint(fields=('project', 'user'), name='one_membership_per_user')],
            },
        ),
        migrations.RunPython(split_suspensions, migrations.RunPython.noop),
        migrations.RunPython(add_creators_as_members, migrations.RunPython.noop),
    ]
