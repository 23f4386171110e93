// A salon's backend and Herald's time features, through the producer API: confirm a booking
// now, remind two hours before the appointment, cancel the reminder when the customer
// cancels, and send only the newest OTP when a customer taps "resend".
//
//   HERALD_API_URL=http://127.0.0.1:8080 HERALD_API_TOKEN=... node salon.mjs +919999999999
//
// Prints one JSON line per step. Node 20+: fetch is built in, no dependencies.

const base = process.env.HERALD_API_URL ?? "http://127.0.0.1:8080";
const token = process.env.HERALD_API_TOKEN;
const phone = process.argv[2] ?? "+919999999999";
if (!token) {
  console.error("HERALD_API_TOKEN is required (one of the server's HERALD_API_TOKENS)");
  process.exit(2);
}

async function call(method, path, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

// Tomorrow at 10:30 in the salon's time zone (the server's HERALD_TIMEZONE unless `tz`).
const tomorrow = new Date(Date.now() + 24 * 3600 * 1000).toISOString().slice(0, 10);
const appointment = { phone, booking_id: "B123", service: "Haircut", date: tomorrow, time: "10:30", tz: "Asia/Kolkata" };

const confirmation = await call("POST", "/v1/jobs/booking", {
  ...appointment,
  idempotency_key: "booking:B123:confirmation",
});
console.log(JSON.stringify({ step: "confirmation", status: confirmation.status, ...confirmation.body }));

const reminder = await call("POST", "/v1/jobs/reminder", {
  ...appointment,
  before: "2h",
  idempotency_key: "booking:B123:reminder",
});
console.log(JSON.stringify({ step: "reminder", status: reminder.status, ...reminder.body }));

// The customer cancels the booking: withdraw the reminder (200), whatever else is unsent.
const cancel = await call("DELETE", "/v1/jobs?idempotency_key=booking:B123:reminder");
console.log(JSON.stringify({ step: "cancel reminder", status: cancel.status, ...cancel.body }));

// "Resend OTP" twice: each newer code supersedes the unsent older one.
const key = `otp:${phone}`;
const first = await call("POST", "/v1/jobs/otp", { phone, code: "482913", replace_key: key });
const second = await call("POST", "/v1/jobs/otp", { phone, code: "730155", replace_key: key });
console.log(JSON.stringify({ step: "resend otp", status: second.status, first: first.body.job_id, ...second.body }));
