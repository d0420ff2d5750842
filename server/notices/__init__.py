"""Notices that reach people (docs/jobs.md, docs/admin.md): the overdue digest, problem
escalations and the weekly bulletin, sent to each county's and township's WeCom or DingTalk
group robot and e-mail recipients. ``messages`` words them, ``notify`` queues them when a job
has run, ``queue`` sends and retries them, ``channels`` talks to the robots and the mail
server, ``api`` is the admin's configuration and the record of deliveries."""
