"""The job rows of a list, for pages whose view hands the template plain jobs (a project's page)."""

from django import template

from jobs import listing

register = template.Library()


@register.simple_tag
def job_rows(jobs):
    """``{% job_rows project_jobs as rows %}``: the rows ``jobs/_job_rows.html`` shows."""
    return listing.rows(jobs)
