"""A logger per request: logging keeps every logger it ever made."""
import logging


def handle(request_id):
    log = logging.getLogger("leakyapp.request.%d" % request_id)  # leak: logger
    log.debug("handling %d", request_id)
