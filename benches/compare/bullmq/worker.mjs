// A BullMQ worker doing Herald's job: for each OTP job, POST the same Interakt body Herald
// renders (a standalone rich card) to TARGET_URL with concurrency 50, and treat anything but
// a 2xx with {"result":true} as a failure (BullMQ then retries it). Exits once JOBS jobs have
// completed and prints {"completed":N,"seconds":S,"max_rss_kib":K}, S from process start.
import { Worker } from 'bullmq';
import IORedis from 'ioredis';

// BullMQ 6 takes its ioredis client ready-made in a native ESM module.
const connection = new IORedis(process.env.REDIS_URL, { maxRetriesPerRequest: null });
const total = Number(process.env.JOBS);
const target = process.env.TARGET_URL;
const concurrency = Number(process.env.CONCURRENCY || 50);

function body({ phone, code, validFor }) {
  return JSON.stringify({
    countryCode: '+91',
    phoneNumber: phone,
    type: 'STANDALONE_CAROUSEL',
    message: {
      richCardDetails: {
        standalone: {
          cardOrientation: 'VERTICAL',
          content: {
            cardTitle: 'Your verification code',
            cardDescription: `${code} is your one-time password. It is valid for ${validFor / 60} minutes. Do not share it with anyone.`,
          },
        },
      },
    },
  });
}

let completed = 0;
const worker = new Worker(
  'otp',
  async (job) => {
    const response = await fetch(target, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Basic YmVuY2g=' },
      body: body(job.data),
    });
    const answer = await response.json();
    if (!response.ok || !answer.result) throw new Error(`HTTP ${response.status}`);
    return answer.id;
  },
  {
    connection,
    concurrency,
    removeOnComplete: { count: 0 },
  },
);
worker.on('completed', async () => {
  completed += 1;
  if (completed === total) {
    const seconds = process.uptime();
    const maxRss = process.resourceUsage().maxRSS;
    await worker.close();
    console.log(JSON.stringify({ completed, seconds, max_rss_kib: maxRss }));
    process.exit(0);
  }
});
