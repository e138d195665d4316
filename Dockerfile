FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY config ./config
RUN pip install --no-cache-dir . && useradd --create-home relay
USER relay
ENV CIO_LOG_FORMAT=json
CMD ["celery", "-A", "worker.app", "worker", "--loglevel=INFO", "-E"]
