//! TEMPORARY stand-in until the lang branch lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyProblem { Empty }
pub fn check_reply(_question: &str, reply: &str) -> Result<(), ReplyProblem> { if reply.trim().is_empty() { Err(ReplyProblem::Empty) } else { Ok(()) } }
