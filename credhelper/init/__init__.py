"""`credhelper init`: from the setup guide's end state (a long-term pair pasted into an app's `.env`)
to a working setup. Every file change is planned first (old text in, new text out, refused before
anything is written), then applied; a failure before the first `.env` is rewritten puts every file
back as it was.

The package is split by phase: `plan` (every file change, or the refusal, before anything is
written; `mask` keeps the dry run's diff free of secrets), `apply` (writing the plan, undoing it,
starting the service), `prompts` (the command's questions on a terminal: the only click user
outside `cli.py`)."""
