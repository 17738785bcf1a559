-- Reports by time (v16): the hot topics (热点问题, issue 14) read the latest days' citizen
-- reports, newest first, without walking every report ever filed.
CREATE INDEX reports_at ON reports (at);
