"""PasteDeploy server runner for production: gunicorn, with environment overrides.

``use = egg:nexus_pyramid#gunicorn`` in production.ini. The ini gives the defaults;
``WEB_CONCURRENCY`` (workers), ``PORT`` and ``BIND`` override them, as container
platforms expect.
"""
from __future__ import annotations

import os


def serve(app, global_conf, **local_conf):
    from gunicorn.app.pasterapp import serve as gunicorn_serve

    if os.environ.get("WEB_CONCURRENCY"):
        local_conf["workers"] = os.environ["WEB_CONCURRENCY"]
    if os.environ.get("BIND"):
        local_conf["bind"] = os.environ["BIND"]
    elif os.environ.get("PORT"):
        host = local_conf.get("bind", "0.0.0.0:6543").rsplit(":", 1)[0]
        local_conf["bind"] = f"{host}:{os.environ['PORT']}"
    return gunicorn_serve(app, global_conf, **local_conf)
