"""E-mails to people and report recipients: what each says, when it is due, and its delivery.

- queue.py: which notices a batch owes (rows with an idempotency key), moved or withdrawn
  when the batch changes;
- content.py: what a notice says, built from the stored plan at send time;
- wording.py: the admin-editable templates and the safe headers;
- delivery.py: claim, send exactly once, retry, sweep (called by the Celery tasks);
- corrections.py: a person told something the plan no longer says gets one correction;
- forecast.py: what scheduling would send, for the batch page.
"""
