// The Voice REST API the simulator serves: HTTP Basic auth, create, fetch, update (cancel, hang up)
// and list calls, form-encoded in and JSON out, with Twilio's error shape.

import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mulberry32 } from '../../lambdas/core/random.ts';
import { answererFor } from './behaviors.ts';
import { finish, register } from './lifecycle.ts';
import { type CallState, chance, isFinal, now, type SimState } from './state.ts';
import {
  type ApiError,
  CALLBACK_EVENTS,
  type CallbackEvent,
  type CallScript,
  type MachineDetectionMode,
} from './types.ts';
import {
  API_VERSION,
  apiError,
  boundedInt,
  HttpError,
  isHttpUrl,
  readForm,
  rfc2822,
  sendJson,
} from './wire.ts';

const CALLS_PATH = /^\/2010-04-01\/Accounts\/([^/]+)\/Calls\.json$/;
const CALL_PATH = /^\/2010-04-01\/Accounts\/([^/]+)\/Calls\/([^/]+)\.json$/;
const PHONE = /^\+[1-9]\d{1,14}$/;
const DEFAULT_TIMEOUT_SECONDS = 60;
const DEFAULT_TIME_LIMIT_SECONDS = 14_400;

export async function handle(sim: SimState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const target = new URL(req.url ?? '/', 'http://simulator');
  const path = target.pathname;
  const callsMatch = CALLS_PATH.exec(path);
  const callMatch = CALL_PATH.exec(path);
  if (!callsMatch && !callMatch) {
    throw apiError(404, 20404, `The requested resource ${path} was not found`);
  }
  authenticate(sim, req, (callsMatch ?? callMatch)![1]!);
  const body = req.method === 'POST' ? await readForm(req) : new URLSearchParams();

  if (callsMatch && req.method === 'POST') return create(sim, body, res);
  if (callsMatch && req.method === 'GET') return list(sim, target, res);
  if (callMatch && req.method === 'GET') return sendJson(res, 200, resource(sim, find(sim, callMatch[2]!)));
  if (callMatch && req.method === 'POST') return update(sim, find(sim, callMatch[2]!), body, res);
  throw apiError(405, 20004, 'Method not allowed');
}

function authenticate(sim: SimState, req: IncomingMessage, pathAccountSid: string): void {
  const header = req.headers.authorization ?? '';
  const [scheme, encoded] = header.split(' ');
  const decoded = scheme === 'Basic' && encoded ? Buffer.from(encoded, 'base64').toString('utf-8') : '';
  const separator = decoded.indexOf(':');
  const user = decoded.slice(0, Math.max(0, separator));
  const password = decoded.slice(separator + 1);
  if (separator < 0 || user !== sim.accountSid || password !== sim.authToken) {
    throw apiError(401, 20003, 'Authenticate');
  }
  if (pathAccountSid !== sim.accountSid) {
    throw apiError(404, 20404, `The requested resource /2010-04-01/Accounts/${pathAccountSid} was not found`);
  }
}

function find(sim: SimState, sid: string): CallState {
  const call = sim.bySid.get(sid);
  if (!call)
    throw apiError(
      404,
      20404,
      `The requested resource /2010-04-01/Accounts/${sim.accountSid}/Calls/${sid}.json was not found`,
    );
  return call;
}

// ---- create ----------------------------------------------------------------------------------

async function create(sim: SimState, body: URLSearchParams, res: ServerResponse): Promise<void> {
  sim.stats.createRequests += 1;
  const { faults, rejectNumbers } = sim.settings;
  // Faults come first: a throttled or failed request is refused before Twilio looks at it.
  if (chance(sim.random, faults.createThrottled)) {
    sim.stats.throttled += 1;
    sim.log('create → 429 (injected)');
    throw apiError(429, 20429, 'Too Many Requests');
  }
  if (chance(sim.random, faults.createServerErrorWithoutCreating)) {
    sim.stats.serverErrors.withoutCreating += 1;
    sim.log('create → 500 without creating (injected)');
    throw apiError(500, 20500, 'Internal Server Error');
  }

  let call: CallState;
  try {
    call = validateAndBuild(sim, body, rejectNumbers);
  } catch (error) {
    sim.stats.rejected += 1;
    throw error;
  }
  register(sim, call);

  if (chance(sim.random, faults.createServerErrorAfterCreating)) {
    sim.stats.serverErrors.afterCreating += 1;
    sim.log(`${call.sid} create → 500 after creating (injected)`);
    throw apiError(500, 20500, 'Internal Server Error');
  }
  if (sim.settings.createDelayMs > 0) await sim.sleep(sim.settings.createDelayMs);
  sendJson(res, 201, resource(sim, call));
}

function validateAndBuild(
  sim: SimState,
  body: URLSearchParams,
  rejectNumbers: Record<string, ApiError>,
): CallState {
  const to = body.get('To');
  const from = body.get('From');
  const url = body.get('Url') ?? undefined;
  const twiml = body.get('Twiml') ?? undefined;
  if (!to) throw apiError(400, 21201, "No 'To' number is specified");
  if (!from) throw apiError(400, 21213, "No 'From' number is specified");
  if (!url && !twiml && !body.get('ApplicationSid')) {
    throw apiError(400, 21205, "Either a 'Url', 'ApplicationSid' or 'Twiml' parameter is required");
  }
  if (url !== undefined && !isHttpUrl(url)) throw apiError(400, 21205, `Url is not a valid URL: ${url}`);
  const rejected = rejectNumbers[to];
  if (rejected) throw new HttpError(rejected);
  if (!PHONE.test(to) && !/^(client|sip):/.test(to)) {
    throw apiError(400, 21211, `The 'To' number ${to} is not a valid phone number.`);
  }
  if (!PHONE.test(from)) {
    throw apiError(
      400,
      21212,
      `The 'From' number ${from} is not a valid phone number, shortcode, or alphanumeric sender ID.`,
    );
  }

  const statusCallback = body.get('StatusCallback') ?? undefined;
  let ids: URLSearchParams | undefined;
  if (statusCallback !== undefined) {
    if (!isHttpUrl(statusCallback))
      throw apiError(400, 21205, `StatusCallback is not a valid URL: ${statusCallback}`);
    ids = new URL(statusCallback).searchParams;
  }
  const method = (body.get('StatusCallbackMethod') ?? 'POST').toUpperCase();
  if (method !== 'POST' && method !== 'GET')
    throw apiError(400, 21207, `Invalid StatusCallbackMethod: ${method}`);
  const requested = body
    .getAll('StatusCallbackEvent')
    .flatMap((value) => value.split(/[\s,]+/))
    .filter(Boolean);
  for (const event of requested) {
    if (!(CALLBACK_EVENTS as readonly string[]).includes(event)) {
      throw apiError(400, 21626, `Invalid StatusCallbackEvent: ${event}`);
    }
  }
  const events = new Set<CallbackEvent>(
    requested.length > 0 ? (requested as CallbackEvent[]) : ['completed'],
  );
  const timeoutSeconds = boundedInt(body.get('Timeout'), DEFAULT_TIMEOUT_SECONDS, 1, 600, 'Timeout');
  const timeLimitSeconds = boundedInt(
    body.get('TimeLimit'),
    DEFAULT_TIME_LIMIT_SECONDS,
    1,
    86_400,
    'TimeLimit',
  );

  const amd = machineDetection(body);

  const index = sim.calls.length;
  const rng = mulberry32(Math.floor(sim.random() * 4294967296));
  const settings = sim.settings;
  const script: CallScript = settings.behavior?.({ to, from, index }) ?? { outcome: 'completed' };
  if (script.invalidNumber) throw apiError(400, 21211, `The 'To' number ${to} is not a valid phone number.`);
  const vary = (ms: number) => Math.max(0, ms * (1 + settings.jitter * (2 * rng() - 1)));
  const talkMs = script.talkMs ?? vary(settings.talkMs);
  const createdAt = now();
  const run = ids?.get('run') ?? undefined;
  const job = ids?.get('job') ?? undefined;
  const attempt = ids?.get('attempt') ?? undefined;
  return {
    sid: `CA${randomBytes(16).toString('hex')}`,
    index,
    to,
    from,
    ...(url !== undefined ? { url } : {}),
    ...(twiml !== undefined ? { twiml } : {}),
    ...(statusCallback !== undefined ? { statusCallback } : {}),
    statusCallbackMethod: method,
    statusCallbackEvents: CALLBACK_EVENTS.filter((event) => events.has(event)),
    events,
    timeoutSeconds,
    timeLimitSeconds,
    ...(run !== undefined ? { run } : {}),
    ...(job !== undefined ? { job } : {}),
    ...(attempt !== undefined ? { attempt } : {}),
    ...(script.digits ? { digits: script.digits } : {}),
    script: {
      outcome: script.outcome,
      queuedMs: script.queuedMs ?? vary(settings.queuedMs),
      ringMs: script.ringMs ?? vary(settings.ringMs),
      talkMs,
    },
    ...(amd
      ? {
          machineDetection: amd.mode,
          asyncAmd: amd.async,
          ...(amd.callback !== undefined ? { asyncAmdStatusCallback: amd.callback } : {}),
          machineDetectionTimeout: amd.timeoutSeconds,
          amd: {
            answerer: script.answeredBy ?? answererFor(to),
            // Within the detection timeout, as Twilio gives up (`unknown`) at it.
            afterMs: Math.min(script.amdMs ?? talkMs * 0.4, amd.timeoutSeconds * sim.secondMs),
          },
        }
      : {}),
    redirects: [],
    statusUpdates: [],
    status: 'queued',
    createdAt,
    updatedAt: createdAt,
    callbacks: [],
    rng,
    nextSequence: 0,
    chain: Promise.resolve(),
  };
}
const AMD_MODES: readonly string[] = ['Enable', 'DetectMessageEnd'] satisfies MachineDetectionMode[];

/**
 * Answering-machine detection's parameters, refused as Twilio refuses them (400, 20001): a mode other
 * than Enable or DetectMessageEnd, AsyncAmd other than true or false, a callback that is not a URL or
 * whose method is neither POST nor GET, tuning values outside Twilio's documented ranges. Without
 * MachineDetection the others change nothing, as at Twilio.
 */
function machineDetection(
  body: URLSearchParams,
): { mode: MachineDetectionMode; async: boolean; callback?: string; timeoutSeconds: number } | undefined {
  const mode = body.get('MachineDetection');
  const asyncAmd = body.get('AsyncAmd');
  const callback = body.get('AsyncAmdStatusCallback');
  const method = body.get('AsyncAmdStatusCallbackMethod');
  if (mode !== null && !AMD_MODES.includes(mode)) {
    throw apiError(400, 20001, `Invalid MachineDetection: ${mode} (Enable or DetectMessageEnd)`);
  }
  if (asyncAmd !== null && asyncAmd !== 'true' && asyncAmd !== 'false') {
    throw apiError(400, 20001, `Invalid AsyncAmd: ${asyncAmd} (true or false)`);
  }
  if (callback !== null && !isHttpUrl(callback)) {
    throw apiError(400, 20001, `AsyncAmdStatusCallback is not a valid URL: ${callback}`);
  }
  if (method !== null && method.toUpperCase() !== 'POST' && method.toUpperCase() !== 'GET') {
    throw apiError(400, 20001, `Invalid AsyncAmdStatusCallbackMethod: ${method}`);
  }
  const timeoutSeconds = boundedInt(
    body.get('MachineDetectionTimeout'),
    30,
    3,
    59,
    'MachineDetectionTimeout',
  );
  boundedInt(
    body.get('MachineDetectionSpeechThreshold'),
    2400,
    1000,
    6000,
    'MachineDetectionSpeechThreshold',
  );
  boundedInt(
    body.get('MachineDetectionSpeechEndThreshold'),
    1200,
    500,
    5000,
    'MachineDetectionSpeechEndThreshold',
  );
  boundedInt(
    body.get('MachineDetectionSilenceTimeout'),
    5000,
    2000,
    10_000,
    'MachineDetectionSilenceTimeout',
  );
  if (mode === null) return undefined;
  return {
    mode: mode as MachineDetectionMode,
    async: asyncAmd === 'true',
    ...(callback !== null ? { callback } : {}),
    timeoutSeconds,
  };
}

// ---- read and update -------------------------------------------------------------------------

function resource(sim: SimState, call: CallState): Record<string, unknown> {
  const uri = `/${API_VERSION}/Accounts/${sim.accountSid}/Calls/${call.sid}`;
  const final = isFinal(call.status);
  return {
    account_sid: sim.accountSid,
    annotation: null,
    answered_by: call.answeredBy ?? null,
    api_version: API_VERSION,
    caller_name: null,
    date_created: rfc2822(call.createdAt),
    date_updated: rfc2822(call.updatedAt),
    direction: 'outbound-api',
    duration: final ? String(call.durationSeconds ?? 0) : null,
    end_time: call.endedAt === undefined ? null : rfc2822(call.endedAt),
    forwarded_from: null,
    from: call.from,
    from_formatted: call.from,
    group_sid: null,
    parent_call_sid: null,
    phone_number_sid: null,
    price: null,
    price_unit: 'USD',
    queue_time: String(Math.round(call.script.queuedMs)),
    sid: call.sid,
    start_time: call.startedAt === undefined ? null : rfc2822(call.startedAt),
    status: call.status,
    subresource_uris: {
      notifications: `${uri}/Notifications.json`,
      recordings: `${uri}/Recordings.json`,
      events: `${uri}/Events.json`,
    },
    to: call.to,
    to_formatted: call.to,
    trunk_sid: null,
    uri: `${uri}.json`,
  };
}

function update(sim: SimState, call: CallState, body: URLSearchParams, res: ServerResponse): void {
  const status = body.get('Status');
  if (status !== null) {
    const request: CallState['statusUpdates'][number] = { at: now(), status };
    call.statusUpdates.push(request);
    try {
      endCall(sim, call, status);
    } catch (error) {
      if (error instanceof HttpError) request.refusedWith = error.apiError.code;
      throw error;
    } finally {
      sim.changed();
    }
  } else {
    redirect(sim, call, body);
  }
  sendJson(res, 200, resource(sim, call));
}

/** A cancel (queued or ringing only) or a hang-up (any live call), refused as Twilio refuses them. */
function endCall(sim: SimState, call: CallState, status: string): void {
  if (status === 'canceled') {
    if (call.status !== 'queued' && call.status !== 'ringing') {
      throw apiError(
        400,
        21220,
        `Call is not queued or ringing (it is ${call.status}): it cannot be canceled`,
      );
    }
    finish(sim, call, 'canceled');
  } else if (status === 'completed') {
    if (isFinal(call.status)) throw apiError(400, 21220, `Call is not in progress (it is ${call.status})`);
    finish(sim, call, call.status === 'in-progress' ? 'completed' : 'canceled');
  } else {
    throw apiError(400, 21218, `Invalid Status: ${status}`);
  }
}

/**
 * New TwiML for a call in progress (`Twiml`, or a `Url` to fetch it from), as a voicemail drop does:
 * recorded in the call's `redirects`; the call goes on to its scripted end. Only a call in progress
 * can be redirected here (21220 otherwise).
 */
function redirect(sim: SimState, call: CallState, body: URLSearchParams): void {
  const twiml = body.get('Twiml');
  const url = body.get('Url');
  if (twiml === null && url === null) return;
  if (url !== null && !isHttpUrl(url)) throw apiError(400, 21205, `Url is not a valid URL: ${url}`);
  if (call.status !== 'in-progress') {
    throw apiError(400, 21220, `Call is not in progress (it is ${call.status}): it cannot be redirected`);
  }
  call.redirects.push({ at: now(), ...(twiml !== null ? { twiml } : { url: url! }) });
  call.updatedAt = now();
  sim.log(`${call.sid} redirected`);
  sim.changed();
}

function list(sim: SimState, target: URL, res: ServerResponse): void {
  const query = target.searchParams;
  const to = query.get('To');
  const from = query.get('From');
  const status = query.get('Status');
  const timeFilters = [
    timeFilter(query, 'StartTime', (call) => call.startedAt),
    timeFilter(query, 'EndTime', (call) => call.endedAt),
  ].flat();
  const pageSize = boundedInt(query.get('PageSize'), 50, 1, 1000, 'PageSize');
  const page = boundedInt(query.get('Page'), 0, 0, 1_000_000, 'Page');

  const matching = sim.calls
    .filter(
      (call) =>
        (to === null || call.to === to) &&
        (from === null || call.from === from) &&
        (status === null || call.status === status) &&
        timeFilters.every((accepts) => accepts(call)),
    )
    .sort((a, b) => b.createdAt - a.createdAt);
  const start = page * pageSize;
  const slice = matching.slice(start, start + pageSize);
  const pageUri = (n: number) => {
    const params = new URLSearchParams(query);
    params.set('PageSize', String(pageSize));
    params.set('Page', String(n));
    params.delete('PageToken');
    if (n > 0) params.set('PageToken', `PA${matching[n * pageSize - 1]?.sid ?? ''}`);
    return `${target.pathname}?${params.toString()}`;
  };
  sendJson(res, 200, {
    calls: slice.map((call) => resource(sim, call)),
    end: start + Math.max(0, slice.length - 1),
    first_page_uri: pageUri(0),
    next_page_uri: start + pageSize < matching.length ? pageUri(page + 1) : null,
    page,
    page_size: pageSize,
    previous_page_uri: page > 0 ? pageUri(page - 1) : null,
    start,
    uri: `${target.pathname}${target.search}`,
  });
}

/**
 * Twilio's `StartTime`, `StartTime>` (on or after) and `StartTime<` (on or before) filters. A bare
 * date (YYYY-MM-DD, as Twilio documents) compares by UTC day; a date-time (what twilio-node sends
 * for a Date) compares exactly. A call without the timestamp never matches.
 */
function timeFilter(
  query: URLSearchParams,
  name: string,
  value: (call: CallState) => number | undefined,
): ((call: CallState) => boolean)[] {
  const filters: ((call: CallState) => boolean)[] = [];
  for (const [suffix, compare] of [
    ['', 'on'],
    ['>', 'after'],
    ['<', 'before'],
  ] as const) {
    const raw = query.get(name + suffix);
    if (raw === null || raw === '') continue;
    const dayOnly = /^\d{4}-\d{2}-\d{2}$/.test(raw);
    const at = Date.parse(dayOnly ? `${raw}T00:00:00Z` : raw);
    if (Number.isNaN(at)) throw apiError(400, 20001, `Invalid ${name}${suffix}: ${raw}`);
    const end = dayOnly ? at + 86_400_000 : at;
    filters.push((call) => {
      const t = value(call);
      if (t === undefined) return false;
      if (compare === 'after') return t >= at;
      if (compare === 'before') return dayOnly ? t < end : t <= at;
      return dayOnly ? t >= at && t < end : Math.floor(t / 1000) === Math.floor(at / 1000);
    });
  }
  return filters;
}
