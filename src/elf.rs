//! Reading an ELF image in memory (the vDSO): its function symbols, and which one an address
//! lies in. Pure parsing of bytes the caller has read; an image that does not parse gives
//! nothing.

/// A symbol of an ELF image in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    /// Its run-time address.
    pub addr: usize,
    pub size: usize,
}

/// The function symbols of the ELF image `img` loaded at `base` (the vDSO), from its section
/// headers' dynamic symbol table. An image that does not parse gives no symbols.
pub fn elf_symbols(img: &[u8], base: usize) -> Vec<Symbol> {
    elf_symbols_checked(img, base).unwrap_or_default()
}

fn elf_symbols_checked(img: &[u8], base: usize) -> Option<Vec<Symbol>> {
    let u16at = |o: usize| img.get(o..o.checked_add(2)?).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u32at = |o: usize| img.get(o..o.checked_add(4)?).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize);
    let u64at = |o: usize| img.get(o..o.checked_add(8)?).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize);
    // 64-bit little-endian only: every architecture regtorture runs on.
    if img.get(..6)? != [0x7f, b'E', b'L', b'F', 2, 1] {
        return None;
    }
    let (phoff, shoff) = (u64at(32)?, u64at(40)?);
    let (phentsize, phnum, shentsize, shnum) = (u16at(54)?, u16at(56)?, u16at(58)?, u16at(60)?);
    // Symbol values are link-time addresses: the first PT_LOAD says where the image was linked.
    let linked = (0..phnum)
        .filter_map(|i| i.checked_mul(phentsize)?.checked_add(phoff))
        .find(|&p| u32at(p) == Some(1))
        .and_then(|p| u64at(p.checked_add(16)?).zip(u64at(p.checked_add(8)?)).map(|(vaddr, off)| vaddr.wrapping_sub(off)))?;
    let section = |i: usize| {
        let s = shoff.checked_add(i.checked_mul(shentsize)?)?;
        let at = |k: usize| s.checked_add(k);
        Some((u32at(at(4)?)?, u64at(at(24)?)?, u64at(at(32)?)?, u32at(at(40)?)?, u64at(at(56)?)?))
    };
    let mut out = Vec::new();
    for i in 0..shnum {
        let (ty, off, size, link, entsize) = section(i)?;
        if ty != 11 || entsize < 24 {
            continue; // SHT_DYNSYM only
        }
        let (_, stroff, strsize, _, _) = section(link)?;
        let strtab = img.get(stroff..stroff.checked_add(strsize)?)?;
        for k in 0..size / entsize {
            let e = off.checked_add(k.checked_mul(entsize)?)?;
            let (name, info, value, sz) = (u32at(e)?, *img.get(e.checked_add(4)?)?, u64at(e.checked_add(8)?)?, u64at(e.checked_add(16)?)?);
            if value == 0 || info & 0xf > 2 {
                continue; // undefined, or not an object or function
            }
            let s = strtab.get(name..)?;
            let s = &s[..s.iter().position(|&b| b == 0)?];
            let addr = base.wrapping_add(value.wrapping_sub(linked));
            out.push(Symbol { name: String::from_utf8_lossy(s).into_owned(), addr, size: sz });
        }
    }
    Some(out)
}

/// The symbol `addr` lies in (or, for a zero-sized one, the nearest below it), as `name+off`.
pub fn symbolize(symbols: &[Symbol], addr: usize) -> Option<String> {
    symbols
        .iter()
        .filter(|s| s.addr <= addr && (addr < s.addr + s.size.max(1) || s.size == 0))
        .max_by_key(|s| s.addr)
        .map(|s| if addr == s.addr { s.name.clone() } else { format!("{}+{:#x}", s.name, addr - s.addr) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_no_elf() {
        assert!(elf_symbols(b"not an elf image at all", 0).is_empty());
        let mut hdr = vec![0x7f, b'E', b'L', b'F', 2, 1];
        hdr.resize(64, 0xff);
        assert!(elf_symbols(&hdr, 0).is_empty());
        // Offsets near 2^64 overflow nothing (a debug build would panic on an add).
        let mut img = vec![0x7f, b'E', b'L', b'F', 2, 1];
        img.resize(4096, 0);
        img[32..40].copy_from_slice(&(u64::MAX - 8).to_le_bytes());
        img[40..48].copy_from_slice(&(u64::MAX - 20).to_le_bytes());
        img[54] = 56;
        img[56] = 3;
        img[58] = 64;
        img[60] = 3;
        assert!(elf_symbols(&img, 0).is_empty());
    }
}
