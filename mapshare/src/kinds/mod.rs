//! The public kinds, each in its own file: what a user creates or opens
//! by name. They glue a [`Segment`](crate::segment) to the protocols of
//! [`crate::sync`] and [`crate::queue`], and hold no `unsafe` code.

pub(crate) mod blackboard;
pub(crate) mod channel;
pub(crate) mod event;
pub(crate) mod mailbox;
pub(crate) mod mutex;
pub(crate) mod pubsub;
pub(crate) mod service;
pub(crate) mod shared;
