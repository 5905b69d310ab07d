"""The processes without HTTP: worker, consumer, feed and XTS bridge (README "Processes").

Each serves its own metrics registry on its own port (tradingapp.metrics.serve). prometheus-client
switches to multiprocess files when PROMETHEUS_MULTIPROC_DIR is in the environment, which only
gunicorn's servers want (gunicorn.conf.py sets it for its workers): one inherited here (a shell or
an .env that exports it for every process) would send these metrics to files nobody reads, or stop
the process at start when the folder is gone. Dropped before anything imports prometheus-client.
"""

import os

os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
