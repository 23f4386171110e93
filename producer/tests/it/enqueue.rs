//! The library: each enqueue path lands a decodable job on the right lane; idempotency holds
//! under races and expires with its window; invalid input never reaches Redis.

use std::time::Duration;

use deadpool_redis::redis;
use herald_shared::job::{Booking, DEFAULT_OTP_VALIDITY, Payload};
use herald_shared::{Job, JobKind, Lane};
use herald_tests::RedisServer;
use producer::{Error, Producer};

use crate::support::{self, dbsize, keys, lane_jobs, producer, wait_until};

fn booking() -> Booking {
    Booking {
        phone: "+919999999999".into(),
        booking_id: "B123".into(),
        service: "Haircut".into(),
        date: "2026-11-24".into(),
        time: "10:30".into(),
        image_url: Some("https://example.com/salon.png".into()),
    }
}

#[tokio::test]
async fn otp_goes_to_the_otp_lane_with_its_deadline() {
    let server = RedisServer::start();
    let producer = producer(&server).await;
    let valid_for = Duration::from_secs(90);
    let enqueued = producer
        .enqueue_otp("+91 99999 99999", "123456", valid_for, None)
        .await
        .unwrap();
    assert!(!enqueued.duplicate);
    let jobs = lane_jobs(&server, Lane::Otp);
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job.id, enqueued.job_id);
    assert_eq!(job.not_after, Some(job.created_at + valid_for));
    let Payload::Otp(otp) = &job.payload else {
        panic!("not an OTP: {job:?}")
    };
    assert_eq!(otp.phone, "+919999999999");
    assert_eq!(otp.code.expose(), "123456");
    assert!(lane_jobs(&server, Lane::Booking).is_empty());
}

#[tokio::test]
async fn bookings_and_raw_requests_go_to_the_booking_lane() {
    let server = RedisServer::start();
    let producer = producer(&server).await;
    let booking = producer.enqueue_booking(booking(), None).await.unwrap();
    let standalone = producer
        .enqueue_raw(support::request("request-curl-example-1.json"), None)
        .await
        .unwrap();
    let template = producer
        .enqueue_raw(support::request("request-template-carousel.json"), None)
        .await
        .unwrap();
    let jobs = lane_jobs(&server, Lane::Booking);
    let ids: Vec<_> = jobs.iter().map(|j| j.id).collect();
    assert_eq!(
        ids,
        [booking.job_id, standalone.job_id, template.job_id],
        "in enqueue order"
    );
    let kinds: Vec<_> = jobs.iter().map(Job::kind).collect();
    assert_eq!(kinds, [JobKind::Booking, JobKind::Raw, JobKind::Raw]);
    assert_eq!(
        jobs[1].payload,
        Payload::Raw {
            request: Box::new(support::request("request-curl-example-1.json"))
        }
    );
    assert!(
        jobs[0].not_after.is_some(),
        "a booking is not sent after its appointment starts"
    );
    assert!(jobs[1..].iter().all(|j| j.not_after.is_none()));
    assert!(lane_jobs(&server, Lane::Otp).is_empty());
}

#[tokio::test]
async fn the_same_key_twice_returns_the_first_id_and_adds_one_entry() {
    let server = RedisServer::start();
    let producer = producer(&server).await;
    let key = Some("booking:B123:confirmation".to_string());
    let first = producer
        .enqueue_booking(booking(), key.clone())
        .await
        .unwrap();
    let again = producer
        .enqueue_booking(booking(), key.clone())
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(again.job_id, first.job_id);
    let jobs = lane_jobs(&server, Lane::Booking);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].idempotency_key, key);

    // The claim holds the first id while the job is pending: as long as its record (a week
    // and the slack a send soon after keeps it by), beyond the default window (24 h) it
    // keeps once the job is done.
    let mut conn = support::conn(&server);
    let claim = keys().idempotency("booking:B123:confirmation");
    let (held, ttl): (String, i64) = redis::pipe()
        .get(&claim)
        .cmd("PTTL")
        .arg(&claim)
        .query(&mut conn)
        .unwrap();
    let job = &jobs[0];
    assert_eq!(held, format!("{}:{}", first.job_id, job.fingerprint()));
    let kept = (7 * 24 * 60 * 60 + herald_store::keys::RECORD_TTL_SLACK_SECS as i64) * 1000;
    assert!((kept - 60_000..=kept).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn a_bookings_jobs_are_indexed_by_its_id_once_each_for_a_week() {
    let server = RedisServer::start();
    let producer = producer(&server).await;
    let key = Some("booking:B123:confirmation".to_string());
    let keyed = producer
        .enqueue_booking(booking(), key.clone())
        .await
        .unwrap();
    let duplicate = producer.enqueue_booking(booking(), key).await.unwrap();
    assert!(duplicate.duplicate);
    let unkeyed = producer.enqueue_booking(booking(), None).await.unwrap();
    producer
        .enqueue_otp("+919999999999", "123456", Duration::from_secs(60), None)
        .await
        .unwrap();

    let mut conn = support::conn(&server);
    let index = keys().booking("B123");
    let (mut ids, ttl): (Vec<String>, i64) = redis::pipe()
        .smembers(&index)
        .ttl(&index)
        .query(&mut conn)
        .unwrap();
    ids.sort();
    let mut expected = vec![keyed.job_id.to_string(), unkeyed.job_id.to_string()];
    expected.sort();
    assert_eq!(ids, expected, "each job once, the duplicate not added");
    // As long as the job's record: a week, and the slack a send soon after keeps it by.
    let week = herald_store::keys::TIMELINE_TTL_SECS as i64;
    let kept = week + herald_store::keys::RECORD_TTL_SLACK_SECS as i64;
    assert!((kept - 60..=kept).contains(&ttl), "{ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_producers_with_one_key_enqueue_once() {
    let server = RedisServer::start();
    let mut producers = Vec::new();
    for _ in 0..20 {
        producers.push(producer(&server).await);
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(producers.len()));
    let tasks: Vec<_> = producers
        .into_iter()
        .map(|producer| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                producer
                    .enqueue_otp(
                        "+919999999999",
                        "123456",
                        DEFAULT_OTP_VALIDITY,
                        Some("login:42".into()),
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let jobs = lane_jobs(&server, Lane::Otp);
    assert_eq!(jobs.len(), 1, "exactly one entry");
    assert!(results.iter().all(|r| r.job_id == jobs[0].id));
    assert_eq!(results.iter().filter(|r| !r.duplicate).count(), 1);
}

#[tokio::test]
async fn a_key_reused_for_other_content_is_a_conflict_naming_the_first_job() {
    let server = RedisServer::start();
    let producer = producer(&server).await;
    let key = || Some("login:42".to_string());
    let otp = |code: &'static str| {
        producer.enqueue_otp("+919999999999", code, DEFAULT_OTP_VALIDITY, key())
    };
    let first = otp("731904").await.unwrap();
    // The content is phone and code: a different validity (or the spacing of the phone
    // number) is the same message.
    let same = producer
        .enqueue_otp("+91 99999 99999", "731904", Duration::from_secs(60), key())
        .await
        .unwrap();
    assert_eq!((same.job_id, same.duplicate), (first.job_id, true));

    for result in [
        otp("555111").await,
        producer.enqueue_booking(booking(), key()).await,
    ] {
        match result {
            Err(Error::IdempotencyConflict(conflict)) => {
                assert_eq!(conflict.key, "login:42");
                assert_eq!(conflict.job_id, first.job_id);
                let message = conflict.to_string();
                assert!(message.contains("\"login:42\""), "{message}");
                assert!(!message.contains("555111"), "{message}");
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    assert_eq!(lane_jobs(&server, Lane::Otp).len(), 1);
    assert!(lane_jobs(&server, Lane::Booking).is_empty());
}

#[tokio::test]
async fn a_key_stored_by_the_old_format_is_a_duplicate() {
    let server = RedisServer::start();
    let producer = producer(&server).await;
    // Before fingerprints, the claim held the first job's id alone.
    let old_id = uuid::Uuid::now_v7();
    let _: () = redis::cmd("SET")
        .arg(keys().idempotency("booking:B123:confirmation"))
        .arg(old_id.to_string())
        .arg("PX")
        .arg(60_000)
        .query(&mut support::conn(&server))
        .unwrap();
    let enqueued = producer
        .enqueue_booking(booking(), Some("booking:B123:confirmation".into()))
        .await
        .unwrap();
    assert_eq!((enqueued.job_id, enqueued.duplicate), (old_id, true));
    assert!(lane_jobs(&server, Lane::Booking).is_empty());
}

/// Issue 25, failure 1: a key's window used to count from the enqueue, so a job pending
/// longer than it (a reminder ten days out) lost its key: it could not be cancelled by the
/// key, and enqueueing it again added a second copy. The claim now holds for as long as the
/// job is pending, and for the window once it has been sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_holds_its_pending_job_past_the_window_and_frees_a_window_after_it_is_sent() {
    let server = RedisServer::start();
    let producer = producer(&server)
        .await
        .with_idempotency_window(Duration::from_millis(200));
    let key = || Some("login:7".to_string());
    let enqueue = || producer.enqueue_otp("+919999999999", "1", DEFAULT_OTP_VALIDITY, key());
    let first = enqueue().await.unwrap();
    assert!(enqueue().await.unwrap().duplicate);

    let claim = keys().idempotency("login:7");
    let mut conn = support::conn(&server);
    let pttl = |conn: &mut redis::Connection| -> i64 {
        redis::cmd("PTTL").arg(&claim).query(conn).unwrap()
    };
    assert!(
        pttl(&mut conn) > 6 * 24 * 3600 * 1000,
        "pending: held as long as its record, not 200 ms"
    );

    // Sent, as a worker settles it: the window starts.
    support::settle_sent(&server, Lane::Otp, first.job_id).await;
    let ttl = pttl(&mut conn);
    assert!((1..=200).contains(&ttl), "{ttl}");
    assert!(enqueue().await.unwrap().duplicate, "within the window");
    wait_until("the claim expires", Duration::from_secs(5), || {
        pttl(&mut conn) == -2
    });

    let second = enqueue().await.unwrap();
    assert!(!second.duplicate);
    assert_ne!(second.job_id, first.job_id);
    assert_eq!(
        lane_jobs(&server, Lane::Otp).len(),
        1,
        "the first was settled"
    );
}

#[tokio::test]
async fn invalid_input_never_reaches_redis() {
    let server = RedisServer::start();
    let producer = producer(&server).await;
    let too_many_suggestions: herald_shared::wire::SendRequest =
        serde_json::from_value(support::request_with_suggestions(5)).unwrap();
    let failures: Vec<(&str, Result<_, Error>)> = vec![
        (
            "phone",
            producer
                .enqueue_otp("9999999999", "123456", DEFAULT_OTP_VALIDITY, None)
                .await,
        ),
        (
            "code",
            producer
                .enqueue_otp("+919999999999", "12 34", DEFAULT_OTP_VALIDITY, None)
                .await,
        ),
        (
            "valid_for",
            producer
                .enqueue_otp("+919999999999", "1234", Duration::ZERO, None)
                .await,
        ),
        (
            "idempotency_key",
            producer
                .enqueue_otp(
                    "+919999999999",
                    "1",
                    DEFAULT_OTP_VALIDITY,
                    Some(String::new()),
                )
                .await,
        ),
        (
            "date",
            producer
                .enqueue_booking(
                    Booking {
                        date: "24/11/2026".into(),
                        ..booking()
                    },
                    None,
                )
                .await,
        ),
        (
            "suggestions",
            producer.enqueue_raw(too_many_suggestions, None).await,
        ),
    ];
    for (field, result) in failures {
        match result {
            Err(Error::Invalid(err)) => assert!(err.to_string().contains(field), "{field}: {err}"),
            other => panic!("{field}: expected a validation error, got {other:?}"),
        }
    }
    assert_eq!(dbsize(&server), 0);
}

#[tokio::test]
async fn a_batch_crosses_chunks_in_order_and_deduplicates_within_itself() {
    let server = RedisServer::start();
    let producer = producer(&server).await;
    let otp = |i: usize, key: Option<String>| {
        Job::otp("+919999999999", &i.to_string(), DEFAULT_OTP_VALIDITY)
            .unwrap()
            .with_idempotency_key(key)
            .unwrap()
    };
    // 2,500 jobs: plain OTPs, keyed OTPs, bookings, and a repeat of key 0 at the end.
    let mut jobs = Vec::new();
    for i in 0..2_500 {
        jobs.push(match i % 3 {
            0 => otp(i, None),
            1 => otp(i, Some(format!("k{i}"))),
            _ => Job::booking(booking()).unwrap(),
        });
    }
    jobs.push(otp(1, Some("k1".into())));
    jobs.push(otp(9, Some("k1".into())));
    let ids: Vec<_> = jobs.iter().map(|j| j.id).collect();
    let results = producer.enqueue_batch(jobs).await.unwrap();

    assert_eq!(results.len(), 2_502);
    let (conflict, results) = results.split_last().unwrap();
    let (repeat, results) = results.split_last().unwrap();
    let repeat = repeat.as_ref().unwrap();
    assert!(repeat.duplicate);
    assert_eq!(
        repeat.job_id, ids[1],
        "the repeat returns key k1's first id"
    );
    let Err(producer::enqueue::NotEnqueued::Conflict(conflict)) = conflict else {
        panic!("a conflict: {conflict:?}");
    };
    assert_eq!(
        (conflict.key.as_str(), conflict.job_id),
        ("k1", ids[1]),
        "other content under k1 is a conflict naming its first job"
    );
    let results: Vec<_> = results.iter().map(|r| r.as_ref().unwrap()).collect();
    assert!(results.iter().all(|r| !r.duplicate));
    assert_eq!(
        results.iter().map(|r| r.job_id).collect::<Vec<_>>(),
        ids[..2_500]
    );
    let otp_lane: Vec<_> = lane_jobs(&server, Lane::Otp).iter().map(|j| j.id).collect();
    let expected: Vec<_> = (0..2_500).filter(|i| i % 3 != 2).map(|i| ids[i]).collect();
    assert_eq!(otp_lane, expected, "every OTP, in order, none trimmed");
    assert_eq!(lane_jobs(&server, Lane::Booking).len(), 833);
}

/// One OTP enqueued (key `warm`), so the producer has loaded its script: the lane holds it
/// first.
async fn load_the_script(producer: &Producer) {
    producer
        .enqueue_otp(
            "+919999999999",
            "1",
            DEFAULT_OTP_VALIDITY,
            Some("warm".into()),
        )
        .await
        .unwrap();
}

/// Each key here is used once in each of five chunks: its first job, in the first chunk,
/// must be the one enqueued and every later one a conflict naming it; and the lane holds
/// the first chunk's jobs in order. Run after `SCRIPT FLUSH`, so the first chunk is refused
/// with `NOSCRIPT` and sent again before any later chunk runs.
#[tokio::test]
async fn a_batch_of_many_chunks_runs_in_its_order_with_keys_repeated_across_chunks() {
    let server = RedisServer::start();
    let producer = producer(&server).await;
    load_the_script(&producer).await;
    support::flush_scripts(&server);
    let chunk = producer::enqueue::PIPELINE_CHUNK;
    let jobs: Vec<Job> = (0..5 * chunk)
        .map(|i| {
            Job::otp("+919999999999", &i.to_string(), DEFAULT_OTP_VALIDITY)
                .unwrap()
                .with_idempotency_key(Some(format!("k{}", i % chunk)))
                .unwrap()
        })
        .collect();
    let ids: Vec<_> = jobs.iter().map(|j| j.id).collect();
    let results = producer.enqueue_batch(jobs).await.unwrap();
    for (i, result) in results.iter().enumerate() {
        match (i < chunk, result) {
            (true, Ok(enqueued)) => assert!(!enqueued.duplicate && enqueued.job_id == ids[i]),
            (false, Err(producer::enqueue::NotEnqueued::Conflict(conflict))) => {
                assert_eq!(conflict.job_id, ids[i % chunk], "job {i}")
            }
            (_, other) => panic!("job {i}: {other:?}"),
        }
    }
    let lane: Vec<_> = lane_jobs(&server, Lane::Otp).iter().map(|j| j.id).collect();
    assert_eq!(lane[1..], ids[..chunk], "the first chunk's jobs, in order");
}

/// A batch prepared off the sending task (as `bulk`'s reader does) enqueues as
/// `enqueue_batch` would, chunk by chunk in order: prepared before `SCRIPT FLUSH`, its first
/// chunk's calls are refused with `NOSCRIPT` and built again from its jobs, and each later
/// chunk's calls answer for that chunk's jobs.
#[tokio::test]
async fn a_prepared_batch_enqueues_as_a_batch_does_even_after_its_script_is_flushed() {
    let server = RedisServer::start();
    let producer = producer(&server).await;
    load_the_script(&producer).await;
    let chunk = producer::enqueue::PIPELINE_CHUNK;
    let jobs: Vec<Job> = (0..chunk * 5 / 2)
        .map(|i| {
            let job = Job::otp("+919999999999", &i.to_string(), DEFAULT_OTP_VALIDITY).unwrap();
            // Keyed in the first chunk and every third job after: those are conflicts.
            let key = (i < chunk || i % 3 == 0).then(|| format!("k{}", i % chunk));
            job.with_idempotency_key(key).unwrap()
        })
        .collect();
    let ids: Vec<_> = jobs.iter().map(|j| j.id).collect();
    let prepared = producer.prepare(jobs);
    assert_eq!(prepared.len(), ids.len());
    let debug = format!("{prepared:?}");
    assert_eq!(
        debug, "Prepared { jobs: 2500, calls: 50 }",
        "counts, never an OTP's code"
    );
    support::flush_scripts(&server);
    let results = producer.enqueue_prepared(prepared).await.unwrap();
    assert_eq!(results.len(), ids.len());
    let mut enqueued = Vec::new();
    for (i, result) in results.iter().enumerate() {
        match (i < chunk || i % 3 != 0, result) {
            (true, Ok(new)) => {
                assert!(!new.duplicate && new.job_id == ids[i], "job {i}: {new:?}");
                enqueued.push(ids[i]);
            }
            (false, Err(producer::enqueue::NotEnqueued::Conflict(conflict))) => {
                assert_eq!(conflict.job_id, ids[i % chunk], "job {i}")
            }
            (_, other) => panic!("job {i}: {other:?}"),
        }
    }
    let lane: Vec<_> = lane_jobs(&server, Lane::Otp).iter().map(|j| j.id).collect();
    assert_eq!(lane[1..], enqueued, "every job enqueued, in order");
}

#[tokio::test]
async fn a_flushed_script_is_loaded_again() {
    let server = RedisServer::start();
    let producer = producer(&server).await;
    let keyed = |key: &str| {
        producer.enqueue_otp("+919999999999", "1", DEFAULT_OTP_VALIDITY, Some(key.into()))
    };
    keyed("a").await.unwrap();
    support::flush_scripts(&server);
    assert!(!keyed("b").await.unwrap().duplicate);
    assert!(keyed("a").await.unwrap().duplicate);
    assert_eq!(lane_jobs(&server, Lane::Otp).len(), 2);
}

#[tokio::test]
async fn a_dead_redis_fails_an_enqueue_fast() {
    let mut server = RedisServer::start();
    let producer: Producer = producer(&server).await;
    server.kill();
    let started = std::time::Instant::now();
    let result = producer
        .enqueue_otp("+919999999999", "1", DEFAULT_OTP_VALIDITY, None)
        .await;
    assert!(
        matches!(
            result,
            Err(Error::Redis(_) | Error::Pool(_) | Error::NotEnqueued(_))
        ),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
