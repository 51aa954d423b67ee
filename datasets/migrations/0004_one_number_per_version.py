from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('datasets', '0003_versions'),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='dataset',
            constraint=models.UniqueConstraint(fields=('lineage', 'version'), name='one_number_per_version'),
        ),
    ]
