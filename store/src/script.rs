//! Calling a Lua script: one call written straight into one `EVALSHA` command.
//!
//! redis-rs's `ScriptInvocation` keeps each key and argument in a buffer of its own, then
//! copies them all into the command it sends: about forty allocations for one settle of a
//! send, on the path every job takes. A [`ScriptCall`] writes its keys and arguments into
//! the command's one buffer as they come, and sends that. Like `ScriptInvocation`, it loads
//! the script and sends again when Redis does not know it yet (`NOSCRIPT`: after a restart,
//! a failover or `SCRIPT FLUSH`). Every typed call of [`crate::calls`] is one of these;
//! pipelines (the producer's enqueue, the operator's replay) add its command
//! ([`ScriptCall::into_cmd`]) after loading the script.

use redis::ToRedisArgs;
use redis::aio::ConnectionLike;
use redis::{Cmd, ErrorKind, FromRedisValue, RedisResult, RedisWrite, Script, ServerErrorKind};

/// One call of `script`: its keys, given all at once so their count goes first as Redis
/// wants it, then its arguments. Built and sent by one task; not kept.
pub struct ScriptCall<'s> {
    script: &'s Script,
    cmd: Cmd,
}

impl<'s> ScriptCall<'s> {
    /// A call of `script` with these keys (`KEYS[1]`, `KEYS[2]`, ...); arguments follow
    /// with [`ScriptCall::arg`].
    pub fn new<'k, I>(script: &'s Script, keys: I) -> ScriptCall<'s>
    where
        I: IntoIterator<Item = &'k str>,
        I::IntoIter: Clone,
    {
        // Sized for a settle (about 30 arguments, 600 bytes): most calls never grow it.
        Self::with_capacity(script, keys, 32, 768)
    }

    /// [`ScriptCall::new`] for a call expected to hold about `args` keys and arguments in
    /// `bytes` (a batch of many jobs' arguments).
    pub fn with_capacity<'k, I>(
        script: &'s Script,
        keys: I,
        args: usize,
        bytes: usize,
    ) -> ScriptCall<'s>
    where
        I: IntoIterator<Item = &'k str>,
        I::IntoIter: Clone,
    {
        let keys = keys.into_iter();
        let mut cmd = Cmd::with_capacity(args + 3, bytes);
        cmd.arg("EVALSHA")
            .arg(script.get_hash())
            .arg(keys.clone().count());
        for key in keys {
            cmd.arg(key);
        }
        ScriptCall { script, cmd }
    }

    /// Appends an argument (`ARGV[n]`); a value that writes several (such as a record's
    /// fields) appends each.
    pub fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.cmd.arg(arg);
        self
    }

    /// The `EVALSHA` command itself, for a pipeline (which loads the script first:
    /// `pipe.load_script(call.script())`).
    pub fn cmd(&self) -> &Cmd {
        &self.cmd
    }

    /// The `EVALSHA` command, taken: for a pipeline that sends the call once.
    pub fn into_cmd(self) -> Cmd {
        self.cmd
    }

    /// The script this call runs.
    pub fn script(&self) -> &'s Script {
        self.script
    }

    /// Runs the call; loads the script first when Redis does not have it.
    pub async fn invoke<T: FromRedisValue>(&self, con: &mut impl ConnectionLike) -> RedisResult<T> {
        match self.cmd.query_async(con).await {
            Err(err) if err.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                self.script.load_async(con).await?;
                self.cmd.query_async(con).await
            }
            reply => reply,
        }
    }
}

/// One argument written from several pieces (`charge:` and a member, say), without a
/// `String` made for it first.
#[derive(Clone, Copy, Debug)]
pub struct Concat<'a>(pub &'a [&'a str]);

impl ToRedisArgs for Concat<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + RedisWrite,
    {
        let mut arg = out.writer_for_next_arg();
        for part in self.0 {
            // Writing to a command's buffer cannot fail.
            let _ = std::io::Write::write_all(&mut arg, part.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(call: &ScriptCall) -> String {
        String::from_utf8(call.cmd.get_packed_command()).unwrap()
    }

    #[test]
    fn a_call_is_evalsha_with_the_key_count_then_the_keys_then_the_arguments() {
        let script = Script::new("return 1");
        let mut call = ScriptCall::new(&script, ["k1", "k2"]);
        call.arg("a").arg(7).arg(Concat(&["charge:", "m:1"]));
        let hash = script.get_hash();
        assert_eq!(
            packed(&call),
            format!(
                "*8\r\n$7\r\nEVALSHA\r\n$40\r\n{hash}\r\n$1\r\n2\r\n$2\r\nk1\r\n$2\r\nk2\r\n\
                 $1\r\na\r\n$1\r\n7\r\n$10\r\ncharge:m:1\r\n"
            )
        );
    }

    #[test]
    fn a_call_without_keys_says_zero() {
        let script = Script::new("return 1");
        let call = ScriptCall::new(&script, std::iter::empty());
        assert!(packed(&call).ends_with("$1\r\n0\r\n"));
    }
}
