# exsync image: one image for web (gunicorn), worker and beat.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=exsync.settings
WORKDIR /app
COPY pyproject.toml README.md ./
RUN pip install --no-cache-dir . && useradd --create-home exsync
COPY . .
RUN SECRET_KEY=build-only python manage.py collectstatic --no-input \
    && mkdir -p var && chown -R exsync /app/var
USER exsync
EXPOSE 8000
CMD ["gunicorn", "exsync.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
