// Enqueues JOBS OTP jobs with Queue.addBulk in chunks of 1,000 (what Herald's bulk CLI does
// with its pipelined batches), then prints {"enqueued":N,"seconds":S}.
import { Queue } from 'bullmq';
import IORedis from 'ioredis';

// BullMQ 6 takes its ioredis client ready-made in a native ESM module.
const connection = new IORedis(process.env.REDIS_URL, { maxRetriesPerRequest: null });
const total = Number(process.env.JOBS);
const queue = new Queue('otp', { connection });

const started = process.hrtime.bigint();
for (let i = 0; i < total; i += 1000) {
  const chunk = [];
  for (let j = i; j < Math.min(total, i + 1000); j++) {
    const phone = String(9000000000 + j);
    const code = String(100000 + (j % 900000));
    chunk.push({ name: 'otp', data: { phone, code, validFor: 600 } });
  }
  await queue.addBulk(chunk);
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
console.log(JSON.stringify({ enqueued: total, seconds }));
await queue.close();
await connection.quit();
