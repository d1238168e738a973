"""The states of a stored document, and what each means.

::

    FETCHING ──its attachments by reference settled──▶ RECEIVED
    RECEIVED ──claim──▶ PROCESSING ──commit──▶ DONE   (kind + outcome recorded)
                             │
                             └─technical error─▶ FAILED ──retry after backoff──▶ PROCESSING
                                                   (parked after processing.max_attempts;
                                                    ``reprocess`` brings it back)

FETCHING: an ePUAP document whose attachments sent by reference (``kodowanie="URI"``) are
still being fetched from ePUAP's file repository; it is not processed until each of them is
stored or known to be unavailable (``adapters.epuap.referenced``), so its analysis sees them.

A crash while PROCESSING leaves the claim behind; the next processing pass of a new
process takes it back (the claim token makes a late commit of the old process fail).
A technical failure is never recorded as a rejection: the document's outcome stays empty.
"""

FETCHING = "FETCHING"
RECEIVED = "RECEIVED"
PROCESSING = "PROCESSING"
DONE = "DONE"
FAILED = "FAILED"

ALL = (FETCHING, RECEIVED, PROCESSING, DONE, FAILED)
