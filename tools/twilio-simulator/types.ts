// The simulator's public shapes: what a test configures (options, scripts, faults) and what it reads
// back (call snapshots, the timeline, stats).

export type FinalCallStatus = 'completed' | 'busy' | 'no-answer' | 'failed' | 'canceled';
/** Statuses of the REST resource (Twilio's `initiated` exists only in callbacks). */
export type SimCallStatus = 'queued' | 'ringing' | 'in-progress' | FinalCallStatus;
export type CallbackEvent = 'initiated' | 'ringing' | 'answered' | 'completed';

export const FINAL_CALL_STATUSES: readonly FinalCallStatus[] = [
  'completed',
  'busy',
  'no-answer',
  'failed',
  'canceled',
];
export const CALLBACK_EVENTS: readonly CallbackEvent[] = ['initiated', 'ringing', 'answered', 'completed'];

/** Twilio's `MachineDetection` modes. */
export type MachineDetectionMode = 'Enable' | 'DetectMessageEnd';
/** Who picks up an answered call, as a script says it (the AnsweredBy sent depends on the mode). */
export type Answerer = 'human' | 'machine' | 'fax' | 'unknown';

/** How one call goes. Times in ms; unset ones come from the simulator's defaults (with jitter). */
export interface CallScript {
  outcome: FinalCallStatus;
  /** Time in `queued` before the call is dialed (Twilio's CPS backlog). */
  queuedMs?: number;
  /** Time ringing before the outcome (answer, busy, no-answer, canceled) or before `failed`. */
  ringMs?: number;
  /** Time in progress once answered. */
  talkMs?: number;
  /** The To number is refused at create (400, error 21211), as Twilio refuses an invalid number. */
  invalidNumber?: boolean;
  /**
   * Keys the callee presses once answered, half-way through the talk time: when the call's TwiML has
   * a `<Gather action="…">`, the simulator POSTs `Digits` to that action, signed as Twilio signs it,
   * and ends the call (completed) when the answer's TwiML hangs up.
   */
  digits?: string;
  /**
   * Who answers, for answering-machine detection; default by the To number's last digits (see
   * `answererFor`: 7, 8 or 9 a machine, 00 a fax, else a person).
   */
  answeredBy?: Answerer;
  /** Time from answer to detection's verdict; default 40 % of the talk time (within MachineDetectionTimeout). */
  amdMs?: number;
}

/** A keypress sent to a call's `<Gather>` action, and what the action answered. */
export interface SimGather {
  url: string;
  digits: string;
  sentAt: number;
  responseStatus?: number;
  /** The TwiML the action answered. */
  twiml?: string;
  error?: string;
}

export interface ApiError {
  status: number;
  code: number;
  message: string;
}

export interface SimulatorFaults {
  /** Per callback: deliver it twice (same SequenceNumber, same signature). */
  duplicateCallback?: number;
  /** Per callback: hold it and deliver it after the call's next callback. */
  reorderCallback?: number;
  /** Per callback: never deliver it. */
  dropCallback?: number;
  /** Per final callback (the `completed` event, whatever the outcome): never deliver it. */
  dropFinalCallback?: number;
  /**
   * Per answering-machine detection verdict: hold it and deliver it after the call's final callback
   * (a verdict racing the hang-up).
   */
  amdAfterFinal?: number;
  /** Per create: 429 / 20429, nothing created. */
  createThrottled?: number;
  /** Per create: the call is created and runs, but the answer is a 500. */
  createServerErrorAfterCreating?: number;
  /** Per create: 500, nothing created. */
  createServerErrorWithoutCreating?: number;
}

export interface SimulatorOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  accountSid?: string;
  authToken?: string;
  /** How each call goes; default: answered after the ring time, completed after the talk time. */
  behavior?: (call: { to: string; from: string; index: number }) => CallScript;
  queuedMs?: number;
  ringMs?: number;
  talkMs?: number;
  /** Each default time varies by ± this fraction (0..1), from the call's PRNG. Default 0. */
  jitter?: number;
  /** Real ms per Twilio second, for Timeout, TimeLimit and reported durations. Default 1000. */
  secondMs?: number;
  /** Source of all randomness; pass `mulberry32(seed)` for replayable runs. Default Math.random. */
  random?: () => number;
  faults?: SimulatorFaults;
  /** Delay before answering a create, after the call exists: a client timeout then loses the answer. */
  createDelayMs?: number;
  /** To numbers refused at create; default Twilio's magic +15005550001 (21211) and +15005550003 (21215). */
  rejectNumbers?: Record<string, ApiError>;
  /** Read timeout per callback delivery (Twilio: 15 s). */
  callbackTimeoutMs?: number;
  /** Pause before the retry of a failed callback delivery. */
  callbackRetryDelayMs?: number;
  /** One line per notable event (no phone numbers); for `npm start` and the standalone binary. */
  log?: (line: string) => void;
}

/** What `configure` may change on a running simulator (e.g. a chaos phase). */
export type SimulatorSettings = Pick<
  SimulatorOptions,
  'behavior' | 'faults' | 'createDelayMs' | 'rejectNumbers' | 'queuedMs' | 'ringMs' | 'talkMs' | 'jitter'
>;

export interface SimCallback {
  sequenceNumber: number;
  /** A status callback's event, or `amd`: answering-machine detection's verdict (AsyncAmdStatusCallback). */
  event: CallbackEvent | 'amd';
  callStatus: string;
  /** The URL requested (for GET callbacks, with the parameters in its query string). */
  url: string;
  method: 'POST' | 'GET';
  params: Record<string, string>;
  signature: string;
  fate: 'pending' | 'held' | 'delivered' | 'failed' | 'dropped';
  /** HTTP requests made for it, retries and duplicates included. */
  attempts: number;
  responseStatus?: number;
  error?: string;
  duplicated: boolean;
  reordered: boolean;
  firstSentAt?: number;
}

export interface SimCall {
  sid: string;
  /** 0-based creation order. */
  index: number;
  to: string;
  from: string;
  url?: string;
  twiml?: string;
  statusCallback?: string;
  statusCallbackMethod: 'POST' | 'GET';
  statusCallbackEvents: CallbackEvent[];
  timeoutSeconds: number;
  timeLimitSeconds: number;
  /** The `run`, `job` and `attempt` query parameters of the StatusCallback URL, when present. */
  run?: string;
  job?: string;
  attempt?: string;
  script: Required<Omit<CallScript, 'invalidNumber' | 'digits' | 'answeredBy' | 'amdMs'>>;
  /** Keys the callee presses (CallScript.digits), and what came of it. */
  digits?: string;
  gather?: SimGather;
  /** `MachineDetection` as created, and its asynchronous callback (`AsyncAmdStatusCallback`), if any. */
  machineDetection?: MachineDetectionMode;
  asyncAmd?: boolean;
  asyncAmdStatusCallback?: string;
  /** `MachineDetectionTimeout`, seconds (Twilio's default 30). */
  machineDetectionTimeout?: number;
  /** The verdict, once detection has told (AnsweredBy); also on the resource (`answered_by`). */
  answeredBy?: string;
  /** Every change of what the call hears while in progress (POST Calls/{Sid} with Twiml or Url). */
  redirects: { at: number; twiml?: string; url?: string }[];
  /**
   * Every POST Calls/{Sid} with a Status (`canceled`: a cancel; `completed`: a hang-up), in order, the
   * refused ones too (with the error code answered), so a test sees how often a call was asked to end.
   */
  statusUpdates: { at: number; status: string; refusedWith?: number }[];
  status: SimCallStatus;
  /** ms since the epoch, fractional. */
  createdAt: number;
  startedAt?: number;
  answeredAt?: number;
  endedAt?: number;
  finalCallbackAt?: number;
  durationSeconds?: number;
  callbacks: SimCallback[];
}

export type SimEvent =
  | { kind: 'create'; at: number; sid: string; run?: string }
  | { kind: 'final'; at: number; sid: string; run?: string; status: FinalCallStatus }
  /** First send of a call's final callback (not retries or duplicates). */
  | { kind: 'final-callback'; at: number; sid: string; run?: string };

export interface RunStats {
  created: number;
  live: number;
  maxLive: number;
  final: number;
}

export interface SimulatorStats {
  /** Authenticated create requests, whatever their answer. */
  createRequests: number;
  /** Calls that exist (including those whose create answered 500). */
  created: number;
  /** 4xx answers to creates (validation, rejected numbers). */
  rejected: number;
  throttled: number;
  serverErrors: { afterCreating: number; withoutCreating: number };
  live: number;
  maxLive: number;
  final: number;
  outcomes: Record<FinalCallStatus, number>;
  /** Keyed by the `run` query parameter of the StatusCallback URL. */
  runs: Record<string, RunStats>;
  createsByTo: Record<string, number>;
  callbacks: {
    /** Callbacks generated for requested events. */
    generated: number;
    /** HTTP requests made, retries and duplicates included. */
    attempts: number;
    /** Answered below 500 (a 4xx counts: Twilio does not retry it). */
    delivered: number;
    /** Answered 4xx (e.g. a 403 for a bad signature). */
    answered4xx: number;
    /** Every attempt failed (connection error, timeout, 5xx). */
    failed: number;
    retried: number;
    dropped: number;
    duplicated: number;
    reordered: number;
    /** Deliveries not finished yet. */
    inFlight: number;
  };
}

export interface TwilioSimulator {
  /** Base URL, e.g. http://127.0.0.1:PORT: use it as TWILIO_API_BASE_URL. */
  readonly url: string;
  readonly accountSid: string;
  readonly authToken: string;
  stats(): SimulatorStats;
  /** Snapshots of every call created, in creation order. */
  calls(): SimCall[];
  call(sid: string): SimCall | undefined;
  timeline(): SimEvent[];
  /** To numbers created more than once: a lead called twice. */
  repeatedTos(): string[];
  /** Per final callback sent in the run (all runs when omitted), ms until the next create in that run. */
  refillLatencies(run?: string): number[];
  /** Resolves when `predicate` holds (checked on every change); rejects after `timeoutMs`. */
  waitFor(predicate: (sim: TwilioSimulator) => boolean, timeoutMs?: number, what?: string): Promise<void>;
  /** Resolves when at least `count` calls are final. */
  waitForFinal(count: number, timeoutMs?: number): Promise<void>;
  /** Resolves when no call is live and no callback delivery is in flight. */
  settled(timeoutMs?: number): Promise<void>;
  /** Ends a live call now (the callee hangs up): `completed` if answered, else `canceled`. */
  hangUp(sid: string, status?: FinalCallStatus): boolean;
  configure(settings: SimulatorSettings): void;
  stop(): Promise<void>;
}

export const DEFAULT_ACCOUNT_SID = 'AC0123456789abcdef0123456789abcdef';
export const DEFAULT_AUTH_TOKEN = 'f00dfeedf00dfeedf00dfeedf00dfeed';
