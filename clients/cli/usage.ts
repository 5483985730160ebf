// (client) The CLI's help text and version.

export const DEFAULT_API_URL = 'http://localhost:3000';
export const VERSION = '0.1.0';

export const USAGE = `Usage: dialgate [--api URL] <command> [options]

Commands:
  runs create <leads.csv> [--concurrency N] [RUN OPTIONS] [--watch]
                          Check the CSV, start a run, print its id (with --watch, then watch it)
  runs create --from-run <run-id> [--status S] [--concurrency N] [RUN OPTIONS] [--watch]
                          A new run of another run's leads that ended so: S is one or more
                          statuses or outcomes with commas (default failed; e.g. failed,canceled
                          or busy,no-answer); no phone number leaves the API
  runs list [--limit N] [--cursor C] [--format table|json]
                          Runs, newest first (N up to 100, default 20)
  runs show <run-id> [--format table|json]
  runs watch <run-id> [--interval SECONDS]
                          Live progress until the run ends (plain lines when not a terminal)
  runs pause <run-id>     Stop dialing new leads; live calls go on
  runs resume <run-id>
  runs cancel <run-id> [--hangup]
                          Cancel the leads not dialed yet (--hangup: end live calls too)
  calls <run-id> [--status S] [--outcome O] [--format table|csv|json] [--limit N] [--reveal-phone]
                          The run's calls, every page; S is one status or several with
                          commas: queued, dialing, calling, completed, failed, canceled;
                          O one outcome or several: e.g. suppressed,frequency_capped or busy
  suppressions add <phone> [--reason R] [--expires-at TIME]
                          Never call this number (until TIME, ISO 8601, when given);
                          R e.g. opt-out, dnc-registry (default manual)
  suppressions remove <phone>
                          The number may be called again
  suppressions list [--prefix DIGITS] [--limit N] [--cursor C] [--format table|json]
                          The suppression list in E.164 order (N up to 100, default 50)
  suppressions import <numbers.csv>
                          A CSV with a phone column (reason, expires_at optional): every
                          row or none; bad rows are named by line

Run options (runs create; lists take commas; the API checks every value):
  --retry-on O,…  --retry-delay SECONDS  --max-attempts N
                          Retry leads that ended so (busy, no-answer, failed)
  --window-tz ZONE  --window-days D,…  --window-start HH:MM  --window-end HH:MM
                          Calling window (IANA zone; days sun…sat)
  --from NUMBER           Caller id (the deployment's own or an allowed one)
  --phone-types T,…       Number types the leads may be (mobile, fixed_line, …)
  --twiml-url URL | --twiml XML
                          What the callee hears (TwiML may name lead fields: {{name|default}})
  --machine-detection Enable|DetectMessageEnd
                          Answering-machine detection; a machine's or fax's call ends "machine"
  --voicemail-url URL | --voicemail-twiml XML
                          With DetectMessageEnd: what a machine is left after its greeting
  --on-machine hangup|continue
                          With detection: hang up on a machine or fax left no voicemail
                          (hangup, the default) or play the content on (continue)
  --start-at TIME         Dial nothing before TIME (ISO 8601 with an offset); the run is
                          scheduled until then
  --expires-at TIME       No call starts after TIME; leads not final then end expired
  --pause-failed-ratio R  --pause-min-calls N
                          Failure breaker: pause once more than R (0–1) of the last N calls failed
  --frequency-cap end|wait
                          A lead over the deployment's per-number cap ends frequency_capped
                          (end, the default) or waits for the number's next window (wait)
  --opt-out-digit D  --opt-out-message TEXT
                          The callee may press D (0–9, * or #) to be suppressed; TEXT says so

Options:
  --api URL               API base URL (default: $DIALGATE_API_URL, else ${DEFAULT_API_URL})
  --utc                   Times in UTC (default: local time with its offset; JSON and CSV
                          always carry ISO 8601 as the API sends it)
  -h, --help              This help
  --version               The client's version

Environment:
  DIALGATE_API_URL        Default for --api
  DIALGATE_API_KEY        Sent as x-api-key (needed when the API checks keys)
  NO_COLOR                No colours in \`runs watch\`

Exit codes:
  0    done (runs watch: the run completed)
  1    the API failed or refused the request, or the watched run was canceled
  2    usage: unknown command or option, missing or bad argument
  3    not found: no such run, or (suppressions remove) a number that is not suppressed
  4    invalid input: the CSV is missing, unreadable or invalid, or the API refused the leads
  5    the API cannot be reached
  130  interrupted
  141  stdout was closed (e.g. piped into head): stopped quietly
`;
