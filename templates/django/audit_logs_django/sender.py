"""Posts queued events to `audit-logs run` from one daemon thread, off the request path. Standard library only.

A bounded queue: when it is full an event is dropped and counted, never blocking or raising into the app.
A batch the server did not take (down, 429, 503, 5xx) is sent again, the same events with the same ids
(the server keeps one copy of an id), after a growing pause; meanwhile new events wait in the queue.
At exit the queue is flushed for a bounded time. After a fork (gunicorn --preload) the child starts afresh.
"""

import atexit
import collections
import json
import logging
import os
import queue
import threading
import time
import urllib.error
import urllib.request

logger = logging.getLogger('audit_logs_django')

BATCH_EVENTS = 100  # the server takes up to 1000 events and 1 MiB a request, 64 KiB an event
BATCH_BYTES = 900 * 1024
EVENT_BYTES = 60 * 1024
FIRST_PAUSE, MAX_PAUSE = 0.5, 30.0
POST_TIMEOUT = 10.0


class Sender:
    def __init__(self, url, token, queue_size, flush_timeout=5.0):
        self.url, self.token, self.flush_timeout = url, token, flush_timeout
        self.queue = queue.Queue(maxsize=queue_size)
        self.front = collections.deque()  # taken from the queue, to lead the next batch (a batch split after a 413)
        self.pending = []  # the batch being posted, or waiting to be posted again
        self.lock = threading.Lock()
        self.outstanding = 0  # queued and not yet sent or refused
        self.counts = {'sent': 0, 'dropped': 0, 'failed_posts': 0, 'refused': 0}
        self.wake = threading.Event()  # cuts a pause short at exit
        self.thread = None
        self.failing = False
        self.dropping = False
        # no HTTP_PROXY: `run --egress-bind` points the app's proxy variables at its egress recorder
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def submit(self, event):
        data = json.dumps(event, separators=(',', ':'), ensure_ascii=False).encode()
        if len(data) > EVENT_BYTES:
            data = shrink(event)
        with self.lock:
            if data is None:
                self.counts['refused'] += 1
                logger.warning('audit event %s not sent: over %d bytes even without its values', event.get('action'), EVENT_BYTES)
                return False
            try:
                self.queue.put_nowait(data)
                self.outstanding += 1
            except queue.Full:
                self.counts['dropped'] += 1
                if not self.dropping:
                    self.dropping = True
                    logger.warning('audit events dropped: the queue of %d events is full', self.queue.maxsize)
                return False
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self.loop, name='audit-logs-sender', daemon=True)
                self.thread.start()
        return True

    def stats(self):
        with self.lock:
            return {'queued': self.outstanding, **self.counts, 'url': self.url}

    def loop(self):
        pause = FIRST_PAUSE
        while True:
            if not self.pending and not self.take():
                continue
            wait = self.post()
            if wait is None:
                pause = FIRST_PAUSE
                continue
            delay = min(max(wait, pause), 2 * MAX_PAUSE)
            if self.wake.is_set():  # exiting: tried again soon, for as long as the flush waits
                time.sleep(min(delay, 0.25))
            else:
                self.wake.wait(delay)
            pause = min(pause * 2, MAX_PAUSE)

    def take(self):
        """Makes the next batch (up to BATCH_EVENTS and BATCH_BYTES), waiting a while for its first event."""
        batch, size = [], 0
        while len(batch) < BATCH_EVENTS:
            if self.front:
                data = self.front.popleft()
            else:
                try:
                    data = self.queue.get(timeout=1.0) if not batch else self.queue.get_nowait()
                except queue.Empty:
                    break
            if batch and size + len(data) + 1 > BATCH_BYTES:
                self.front.appendleft(data)
                break
            batch.append(data)
            size += len(data) + 1
        self.pending = batch
        return bool(batch)

    def post(self):
        """Posts pending; None when done with it (sent, or refused for good), else the seconds to wait first."""
        body = b'[' + b','.join(self.pending) + b']'
        headers = {'Content-Type': 'application/json'}
        if self.token:
            headers['Authorization'] = f'Bearer {self.token}'
        request = urllib.request.Request(self.url, data=body, headers=headers, method='POST')
        try:
            with self.opener.open(request, timeout=POST_TIMEOUT) as response:
                answer = json.loads(response.read() or b'{}')
            refused = answer.get('refused') or []
            self.done(len(self.pending) - len(refused), refused)
            return None
        except urllib.error.HTTPError as error:
            status, detail = error.code, error.read()[:500].decode('utf-8', 'replace')
            if status == 400:  # every event refused: sending them again would not help
                try:
                    refused = json.loads(detail).get('refused') or []
                except ValueError:
                    refused = []
                self.done(0, refused or [{'error': detail}] * len(self.pending))
                return None
            if status == 413 and len(self.pending) > 1:  # too big: the first half now, the rest next
                half = len(self.pending) // 2
                self.front.extendleft(reversed(self.pending[half:]))
                self.pending = self.pending[:half]
                return 0
            if status == 413:
                self.done(0, [{'error': f'too large: {detail}'}])
                return None
            return self.failed(f'HTTP {status}: {detail}', retry_after(error.headers))
        except Exception as error:  # down, timed out, reset: all the same here
            return self.failed(str(error), 0)

    def done(self, accepted, refused):
        with self.lock:
            self.counts['sent'] += accepted
            self.counts['refused'] += len(refused)
            self.outstanding -= len(self.pending)
            self.pending = []
            if self.failing:
                logger.warning('audit events are sent to %s again', self.url)
            self.failing = self.dropping = False
        for r in refused[:5]:
            logger.warning('audit event refused by the server: %s', r.get('error') if isinstance(r, dict) else r)

    def failed(self, why, wait):
        with self.lock:
            self.counts['failed_posts'] += 1
            first, self.failing = not self.failing, True
        if first:
            logger.warning('audit events could not be sent to %s (%s): they wait and are sent again', self.url, why)
        return wait

    def flush(self, timeout=None):
        """Waits until everything queued is sent or refused, at most `timeout` seconds; True when it was."""
        end = time.monotonic() + (self.flush_timeout if timeout is None else timeout)
        while self.outstanding and time.monotonic() < end:
            time.sleep(0.02)
        return not self.outstanding

    def close(self):
        self.wake.set()  # a batch waiting to be sent again is tried now
        if not self.flush():
            logger.warning('audit-logs: %d audit events not sent at exit (%s unreachable)', self.outstanding, self.url)


def retry_after(headers):
    """Seconds from a Retry-After header (0 when absent or an HTTP date; at most an hour)."""
    try:
        return min(max(float((headers or {}).get('Retry-After', 0)), 0), 3600)
    except (TypeError, ValueError):
        return 0


def shrink(event):
    """An event over the server's 64 KiB: its changes and extra replaced by their field names."""
    smaller = dict(event)
    if 'changes' in smaller:
        smaller['changes'] = {k: {'before': '[cut]', 'after': '[cut]'} for k in list(smaller['changes'])[:200]}
    if 'extra' in smaller:
        smaller['extra'] = {'cut': True, 'keys': [str(k)[:100] for k in list(smaller['extra'])[:100]]}
    data = json.dumps(smaller, separators=(',', ':'), ensure_ascii=False).encode()
    return data if len(data) <= EVENT_BYTES else None


_sender = None
_sender_lock = threading.Lock()


class Disabled:
    """Where no events URL is configured or AUDIT_LOGS_ENABLED is False: nothing is queued."""

    url = None

    def submit(self, event):
        return False

    def stats(self):
        return {'queued': 0, 'sent': 0, 'dropped': 0, 'failed_posts': 0, 'refused': 0, 'url': None}

    def flush(self, timeout=None):
        return True

    def close(self):
        pass


def sender():
    """The process's sender, made on first use from the settings."""
    global _sender
    if _sender is None:
        with _sender_lock:
            if _sender is None:
                from . import conf

                _sender = (
                    Sender(conf.events_url(), conf.events_token(), conf.queue_size(), conf.flush_timeout())
                    if conf.enabled()
                    else Disabled()
                )
    return _sender


def reset():
    """Forgets the sender (tests change the settings; a forked child must not share its parent's thread)."""
    global _sender, _sender_lock
    _sender, _sender_lock = None, threading.Lock()


@atexit.register
def _close_at_exit():
    if _sender is not None:
        _sender.close()


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=reset)
