"""The order path: placement (accept, risk, commit, enqueue), actions (modify, cancel), the worker's
submission, broker events, the one state machine's writes (state) and the job queue."""
