# wsgiscope: the web app served by gunicorn (gevent workers: a greenlet per WebSocket;
# simulations in a pool of helper processes). Build:  docker build -t wsgiscope .
# Run:   docker run --rm -p 8000:8000 wsgiscope   then open http://localhost:8000
# More:  docker run --rm -p 8000:8000 wsgiscope wsgiscope serve --host 0.0.0.0 --port 8000 \
#            --workers 2 --redis redis://redis:6379/0   (several workers or containers share
#            their runs through Redis; see the README's Deploy section)
# The wheel is built where there is a C compiler, so the simulator's hot modules are compiled
# with mypyc (setup.py; without a compiler the same build gives pure Python).
FROM python:3.11 AS wheel
WORKDIR /src
COPY pyproject.toml setup.py build_backend.py README.md ./
COPY app ./app
COPY simulator ./simulator
COPY templates ./templates
COPY static ./static
RUN pip wheel --no-cache-dir --no-deps -w /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

# A regular install: the wheel carries the templates, static files and lessons, so the
# sources are not needed once it is installed.
COPY --from=wheel /wheels /wheels
RUN pip install "$(ls /wheels/wsgiscope-*.whl)[redis]" && rm -rf /wheels \
    && useradd --create-home wsgiscope
WORKDIR /home/wsgiscope
USER wsgiscope

EXPOSE 8000
# The lab (real servers on the container's loopback) is off when serving on 0.0.0.0;
# add --allow-lab to turn it on for a trusted audience.
CMD ["wsgiscope", "serve", "--host", "0.0.0.0", "--port", "8000"]
