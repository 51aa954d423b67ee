#!/bin/sh
# Start one process of a site: web | worker | proxy | migrate | manage <args>.
set -eu
case "${1:-web}" in
    web)
        python manage.py migrate --noinput
        python manage.py collectstatic --noinput --verbosity 0
        exec daphne -b 0.0.0.0 -p 8000 --proxy-headers fedweb.asgi:application
        ;;
    worker)
        exec celery -A fedweb worker --loglevel INFO --concurrency "${FEDWEB_WORKER_CONCURRENCY:-$(( ${FEDWEB_JOBS_MAX_TASKS:-4} + 1 ))}" -Q default,jobs
        ;;
    proxy)
        exec python manage.py runproxy --address 0.0.0.0:7443
        ;;
    migrate)
        exec python manage.py migrate --noinput
        ;;
    manage)
        shift
        exec python manage.py "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
