//! Slots per account: how many of one kind of work (costs queries, uploads) one account may have running
//! at once on this node, so one tenant's burst waits for itself (or is told to come back) instead of taking
//! the workers, threads and connections every other tenant needs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::model::token::AccountToken;

/// Up to `per_account` slots for each account.
#[derive(Debug)]
pub struct AccountSlots {
    per_account: usize,
    slots: Mutex<HashMap<AccountToken, Arc<Semaphore>>>,
}

/// Queries one account may run at once, by default: the engine's workers (one per core) twice over.
pub fn default_slots_per_account() -> usize {
    2 * std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Default for AccountSlots {
    fn default() -> Self {
        AccountSlots::new(default_slots_per_account())
    }
}

impl AccountSlots {
    pub fn new(per_account: usize) -> AccountSlots {
        AccountSlots { per_account: per_account.max(1), slots: Mutex::default() }
    }

    /// How many slots each account has.
    pub fn per_account(&self) -> usize {
        self.per_account
    }

    fn semaphore(&self, account: &AccountToken) -> Arc<Semaphore> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        // Accounts with nothing running are forgotten, so the map holds only busy ones.
        slots.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < self.per_account);
        slots.entry(account.clone()).or_insert_with(|| Arc::new(Semaphore::new(self.per_account))).clone()
    }

    /// Waits for one of `account`'s slots; it is free again when the permit drops.
    pub async fn acquire(&self, account: &AccountToken) -> OwnedSemaphorePermit {
        self.semaphore(account).acquire_owned().await.expect("slots are never closed")
    }

    /// One of `account`'s slots if one is free now.
    pub fn try_acquire(&self, account: &AccountToken) -> Option<OwnedSemaphorePermit> {
        self.semaphore(account).try_acquire_owned().ok()
    }
}

/// Uploads in flight: a few per account, and a bound for the node (each holds a blocking thread for its
/// ingest, and the blocking pool is shared with every file read and write).
#[derive(Debug)]
pub struct UploadSlots {
    pub per_account: AccountSlots,
    pub overall: Arc<Semaphore>,
}

/// Uploads one account may have in flight on one node, by default.
pub const UPLOADS_PER_ACCOUNT: usize = 8;
/// Uploads one node runs at once, by default.
pub const UPLOADS_OVERALL: usize = 64;

impl Default for UploadSlots {
    fn default() -> Self {
        UploadSlots::new(UPLOADS_PER_ACCOUNT, UPLOADS_OVERALL)
    }
}

/// Why an upload could not start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// The account has its own slots full.
    Account(usize),
    /// The node has every upload slot taken.
    Node,
}

impl UploadSlots {
    pub fn new(per_account: usize, overall: usize) -> UploadSlots {
        UploadSlots { per_account: AccountSlots::new(per_account), overall: Arc::new(Semaphore::new(overall.max(1))) }
    }

    /// Both slots an upload of `account` needs, now or never.
    pub fn try_acquire(&self, account: &AccountToken) -> Result<(OwnedSemaphorePermit, OwnedSemaphorePermit), Busy> {
        let mine = self.per_account.try_acquire(account).ok_or(Busy::Account(self.per_account.per_account()))?;
        let node = self.overall.clone().try_acquire_owned().map_err(|_| Busy::Node)?;
        Ok((mine, node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_account_with_every_slot_busy_waits_while_other_accounts_run() {
        let slots = AccountSlots::new(2);
        let (a, b): (AccountToken, AccountToken) = ("acct_a".into(), "acct_b".into());
        let held = [slots.acquire(&a).await, slots.acquire(&a).await];
        let third = slots.acquire(&a);
        tokio::pin!(third);
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), &mut third).await;
        assert!(waited.is_err(), "a third query of the same account waits");
        let other = tokio::time::timeout(std::time::Duration::from_secs(5), slots.acquire(&b)).await;
        assert!(other.is_ok(), "another account is not held up");
        drop(held);
        let _third =
            tokio::time::timeout(std::time::Duration::from_secs(5), third).await.expect("freed slots are reused");
    }

    #[test]
    fn uploads_are_refused_past_the_accounts_slots_and_past_the_nodes() {
        let slots = UploadSlots::new(2, 3);
        let (a, b): (AccountToken, AccountToken) = ("acct_a".into(), "acct_b".into());
        let a1 = slots.try_acquire(&a).unwrap();
        let _a2 = slots.try_acquire(&a).unwrap();
        assert_eq!(slots.try_acquire(&a).unwrap_err(), Busy::Account(2));
        let _b1 = slots.try_acquire(&b).unwrap();
        assert_eq!(slots.try_acquire(&b).unwrap_err(), Busy::Node);
        drop(a1);
        assert!(slots.try_acquire(&b).is_ok());
    }
}
