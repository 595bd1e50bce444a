//! The examples that end each command's `--help` (and its man page): plain text, commands that
//! run as written from the repository's root (the samples and mappings are shipped with it).

/// `doto-bulk --help`.
pub const TOP: &str = "\
Examples:
  # Rehearse on the built-in sandbox: no account, no token
  doto-bulk import samples/quickstart.csv -m mappings/quickstart.yaml --sandbox

  # Check a file offline, then import it into a real account
  doto-bulk validate contacts.csv -m mapping.yaml
  DOTO_API_TOKEN=... doto-bulk import contacts.csv -m mapping.yaml --account-id 1 \\
      --base-url https://app.usendoto.com

  # Shell completions (and `doto-bulk man DIR` for the man pages)
  doto-bulk completions bash > ~/.local/share/bash-completion/completions/doto-bulk";

/// `doto-bulk validate --help`.
pub const VALIDATE: &str = "\
Examples:
  # A clean file: exit 0, the run directory holds results.csv and summary.json
  doto-bulk validate samples/quickstart.csv -m mappings/quickstart.yaml

  # A messy one: exit 3, every bad value in failures.csv (file, row, column, value, why)
  doto-bulk validate samples/messy.csv -m mappings/hubspot.yaml --out /tmp/messy-check

  # Phones without a +country code read as British numbers
  doto-bulk validate contacts.csv -m mapping.yaml --phone-region GB";

/// `doto-bulk import --help`.
pub const IMPORT: &str = "\
Examples:
  # Rehearse on the in-process sandbox
  doto-bulk import samples/quickstart.csv -m mappings/quickstart.yaml --sandbox

  # Preview against a real account: nothing is written, plan.csv lists every row's action
  doto-bulk import contacts.csv -m mapping.yaml --account-id 1 --token-file ~/.doto-token --dry-run

  # The real run, then carry on after a kill or Ctrl-C
  doto-bulk import contacts.csv -m mapping.yaml --account-id 1 --token-file ~/.doto-token
  doto-bulk import contacts.csv -m mapping.yaml --account-id 1 --token-file ~/.doto-token \\
      --resume doto-runs/20240321T054640Z-import";

/// `doto-bulk export --help`.
pub const EXPORT: &str = "\
Examples:
  # Every contact of a sandbox seeded with 200 generated ones, to CSV
  doto-bulk export -o /tmp/contacts.csv --sandbox --sandbox-seed 200

  # A real account to XLSX, newest first
  doto-bulk export -o contacts.xlsx --sort=-created_at --account-id 1 --token-file ~/.doto-token

  # JSONL with each contact's notes (contacts.notes.jsonl) and recent conversations beside it
  doto-bulk export -o contacts.jsonl --notes --conversations conversations.jsonl --account-id 1";

/// `doto-bulk revert --help`.
pub const REVERT: &str = "\
Examples:
  # Import into a sandbox saved to a file, then undo that import
  doto-bulk import samples/quickstart.csv -m mappings/quickstart.yaml --sandbox \\
      --sandbox-save /tmp/sandbox.jsonl --out /tmp/quickstart-run
  doto-bulk revert /tmp/quickstart-run --sandbox --sandbox-load /tmp/sandbox.jsonl

  # See what a revert would do, then do it
  doto-bulk revert doto-runs/20240321T054640Z-import --dry-run --account-id 1
  doto-bulk revert doto-runs/20240321T054640Z-import --account-id 1";

/// `doto-bulk mapping --help`.
pub const MAPPING: &str = "\
Examples:
  doto-bulk mapping init samples/zoho-contacts.xlsx -o /tmp/zoho.yaml
  doto-bulk mapping init contacts.csv --phone-region GB > mapping.yaml";

/// `doto-bulk mapping init --help`.
pub const MAPPING_INIT: &str = "\
Examples:
  # Draft a commented mapping, read it, then check the file with it
  doto-bulk mapping init samples/zoho-contacts.xlsx -o /tmp/zoho.yaml
  doto-bulk validate samples/zoho-contacts.xlsx -m /tmp/zoho.yaml

  # Phones without a +country code are German numbers
  doto-bulk mapping init contacts.csv --phone-region DE > mapping.yaml";

/// `doto-bulk sandbox --help`.
pub const SANDBOX: &str = "\
Examples:
  # An emulator on port 3000 with 500 generated contacts (prints its URL, tokens and account)
  doto-bulk sandbox --seed-contacts 500

  # Point the tool at it from another terminal
  DOTO_API_TOKEN=sandbox-admin-token doto-bulk export -o /tmp/all.csv \\
      --base-url http://127.0.0.1:3000 --account-id 1

  # A flaky, slow server: 5% of the writes fail, 50 ms per request
  doto-bulk sandbox --fault-rate 0.05 --latency-ms 50";

/// `doto-bulk completions --help`.
pub const COMPLETIONS: &str = "\
Examples:
  doto-bulk completions bash > ~/.local/share/bash-completion/completions/doto-bulk
  doto-bulk completions zsh > ~/.zfunc/_doto-bulk
  doto-bulk completions fish > ~/.config/fish/completions/doto-bulk.fish";

/// `doto-bulk man --help`.
pub const MAN: &str = "\
Examples:
  # Read the main page at once
  doto-bulk man | man -l -

  # Install every page (doto-bulk.1, doto-bulk-import.1, ...)
  doto-bulk man ~/.local/share/man/man1";
