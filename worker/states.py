"""The states of a stored document, and what each means.

::

    RECEIVED ──claim──▶ PROCESSING ──commit──▶ DONE   (kind + outcome recorded)
                             │
                             └─technical error─▶ FAILED ──retry after backoff──▶ PROCESSING
                                                   (parked after processing.max_attempts;
                                                    ``reprocess`` brings it back)

A crash while PROCESSING leaves the claim behind; the next processing pass of a new
process takes it back (the claim token makes a late commit of the old process fail).
A technical failure is never recorded as a rejection: the document's outcome stays empty.
"""

RECEIVED = "RECEIVED"
PROCESSING = "PROCESSING"
DONE = "DONE"
FAILED = "FAILED"

ALL = (RECEIVED, PROCESSING, DONE, FAILED)
