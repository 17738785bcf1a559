//! Device id → index, built for the readings hot path: ids of up to 23 bytes live inline
//! in one open-addressed table (linear probing, at most half full), so a lookup costs one
//! cache line, and the caller can prefetch that line while it parses the next readings.
//! Longer ids go to an ordinary map. The table is filled once from the registry;
//! lookups of unknown ids never insert, so callers cannot grow it.

use std::collections::HashMap;
use std::hash::BuildHasher;

const INLINE: usize = 23;

#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct Slot {
    key: [u8; INLINE],
    /// 0 = empty (ids are never empty).
    len: u8,
    index: u32,
}

const EMPTY: Slot = Slot {
    key: [0; INLINE],
    len: 0,
    index: 0,
};

pub struct DeviceIndex {
    slots: Vec<Slot>,
    mask: usize,
    long: HashMap<Box<str>, u32>,
    hasher: foldhash::fast::RandomState,
}

impl std::fmt::Debug for DeviceIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceIndex")
            .field("slots", &self.slots.len())
            .field("long", &self.long.len())
            .finish()
    }
}

impl Default for DeviceIndex {
    fn default() -> DeviceIndex {
        DeviceIndex::new(std::iter::empty())
    }
}

impl DeviceIndex {
    /// An index of `ids` (the i-th id is device i); a repeated id keeps its first index.
    pub fn new<'a>(ids: impl ExactSizeIterator<Item = &'a str>) -> DeviceIndex {
        let cap = (ids.len() * 2).max(16).next_power_of_two();
        let mut d = DeviceIndex {
            slots: vec![EMPTY; cap],
            mask: cap - 1,
            long: HashMap::new(),
            hasher: foldhash::fast::RandomState::default(),
        };
        for (i, id) in ids.enumerate() {
            if id.len() > INLINE || id.is_empty() {
                d.long.entry(id.into()).or_insert(i as u32);
                continue;
            }
            let h = d.hash(id);
            let mut k = h as usize & d.mask;
            loop {
                let s = &mut d.slots[k];
                if s.len == 0 {
                    s.key[..id.len()].copy_from_slice(id.as_bytes());
                    s.len = id.len() as u8;
                    s.index = i as u32;
                    break;
                }
                if &s.key[..s.len as usize] == id.as_bytes() {
                    break;
                }
                k = (k + 1) & d.mask;
            }
        }
        d
    }

    #[inline]
    pub fn hash(&self, id: &str) -> u64 {
        self.hasher.hash_one(id.as_bytes())
    }

    /// Asks the memory system for the line `id` (hashed to `h`) will be looked up in.
    #[inline]
    pub fn prefetch(&self, h: u64) {
        #[cfg(target_arch = "x86_64")]
        unsafe {
            // SAFETY: a prefetch is a hint; the address is inside the table.
            let p = self.slots.as_ptr().add(h as usize & self.mask);
            std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = h;
    }

    /// The index of `id`, given its hash `h` from [`DeviceIndex::hash`].
    #[inline]
    pub fn get_hashed(&self, id: &str, h: u64) -> Option<u32> {
        if id.len() > INLINE || id.is_empty() {
            return self.long.get(id).copied();
        }
        let mut k = h as usize & self.mask;
        loop {
            let s = &self.slots[k];
            if s.len == 0 {
                return None;
            }
            if s.len as usize == id.len() && &s.key[..id.len()] == id.as_bytes() {
                return Some(s.index);
            }
            k = (k + 1) & self.mask;
        }
    }

    pub fn get(&self, id: &str) -> Option<u32> {
        self.get_hashed(id, self.hash(id))
    }

    /// Bytes held (the table and the long ids).
    pub fn bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.long.capacity() * (1 + std::mem::size_of::<(Box<str>, u32)>())
            + self.long.keys().map(|k| k.len()).sum::<usize>()
    }
}
