// A backend's view of Herald: enqueue an OTP and a booking confirmation through the
// producer API, then poll each job until Interakt has it (or it is dead-lettered).
//
//   HERALD_API_URL=http://127.0.0.1:8080 HERALD_API_TOKEN=... node enqueue.mjs +919999999999
//
// Node 20+: fetch is built in, no dependencies.

const base = process.env.HERALD_API_URL ?? "http://127.0.0.1:8080";
const token = process.env.HERALD_API_TOKEN;
const phone = process.argv[2] ?? "+919999999999";
const timeoutMs = Number(process.env.HERALD_POLL_TIMEOUT_MS ?? 30000);
if (!token) {
  console.error("HERALD_API_TOKEN is required (one of the server's HERALD_API_TOKENS)");
  process.exit(2);
}

async function call(method, path, body, headers = {}) {
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    // 503 means Redis is briefly unreachable and nothing was written: retry as told.
    if (response.status === 503 && attempt < 5) {
      const wait = Number(response.headers.get("retry-after") ?? 1) * 1000;
      await new Promise((resolve) => setTimeout(resolve, wait));
      continue;
    }
    const answer = await response.json();
    if (!response.ok) {
      throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(answer)}`);
    }
    return answer;
  }
}

// The idempotency key makes a retried request (a timeout, a redeploy) enqueue once.
const otp = await call("POST", "/v1/jobs/otp", { phone, code: "482913", valid_for: "10m" }, {
  "Idempotency-Key": `login:${phone}:${new Date().toISOString().slice(0, 16)}`,
});
const booking = await call("POST", "/v1/jobs/booking", {
  phone,
  booking_id: "B123",
  service: "Haircut",
  date: "2030-11-24",
  time: "10:30",
  idempotency_key: "booking:B123:confirmation",
});
console.log(JSON.stringify({ enqueued: { otp: otp.job_id, booking: booking.job_id } }));

const finished = new Set(["sent", "delivered", "read", "revoked", "dead"]);
const deadline = Date.now() + timeoutMs;
const states = {};
for (const [name, job] of Object.entries({ otp, booking })) {
  let state;
  do {
    state = await call("GET", `/v1/jobs/${job.job_id}`);
    if (finished.has(state.state)) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  } while (Date.now() < deadline);
  states[name] = state;
  console.log(JSON.stringify({ job: name, state: state.state, message_id: state.message_id ?? null }));
}
process.exit(Object.values(states).every((s) => finished.has(s.state)) ? 0 : 1);
