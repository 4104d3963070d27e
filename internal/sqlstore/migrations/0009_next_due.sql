-- The engine asks after every pass when the next back-off ends (the
-- earliest retry_after still to come), so that it wakes then instead of at
-- its next sweep: only accounts in a back-off have a retry_after in the
-- future, and this index finds them without reading the others.
CREATE INDEX auto_top_up_retry_after ON auto_top_up (retry_after) WHERE enabled;
