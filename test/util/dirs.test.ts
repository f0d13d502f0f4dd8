import {existsSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {missingDirs, removeIfEmpty} from '../../src/util/dirs.js'

describe('directories a failed start made', () => {
  const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'audit-logs-dirs-'))

  it('missingDirs: the outermost missing part of each, once', () => {
    const dir = tmp()
    mkdirSync(path.join(dir, 'there'))
    expect(
      missingDirs([path.join(dir, 'there'), path.join(dir, 'a', 'b', 'c'), path.join(dir, 'a', 'd'), path.join(dir, 'there', 'e')]),
    ).to.deep.equal([path.join(dir, 'a'), path.join(dir, 'there', 'e')])
    expect(missingDirs([dir])).to.deep.equal([])
  })

  it("removeIfEmpty: a tree of empty directories goes; a file anywhere keeps the whole tree as it is (an initialised PostgreSQL data directory's empty pg_notify/ too); never a symbolic link's target", () => {
    const dir = tmp()
    mkdirSync(path.join(dir, 'empty', 'journal'), {recursive: true})
    mkdirSync(path.join(dir, 'empty', 'clients'))
    expect(removeIfEmpty(path.join(dir, 'empty'))).to.equal(true)
    expect(existsSync(path.join(dir, 'empty'))).to.equal(false)

    mkdirSync(path.join(dir, 'held', 'journal'), {recursive: true})
    mkdirSync(path.join(dir, 'held', 'pgdata', 'pg_notify'), {recursive: true})
    writeFileSync(path.join(dir, 'held', 'pgdata', 'PG_VERSION'), '17\n')
    expect(removeIfEmpty(path.join(dir, 'held'))).to.equal(false)
    // nothing removed: PostgreSQL refuses to start without its empty pg_notify/ (a failed first run once removed it)
    expect(readdirSync(path.join(dir, 'held')).sort()).to.deep.equal(['journal', 'pgdata'])
    expect(readdirSync(path.join(dir, 'held', 'pgdata')).sort()).to.deep.equal(['PG_VERSION', 'pg_notify'])

    const outside = path.join(dir, 'outside')
    mkdirSync(outside)
    mkdirSync(path.join(dir, 'linked'))
    symlinkSync(outside, path.join(dir, 'linked', 'to-outside'))
    expect(removeIfEmpty(path.join(dir, 'linked'))).to.equal(false)
    expect(existsSync(outside)).to.equal(true)

    expect(removeIfEmpty(path.join(dir, 'never-made'))).to.equal(false)
  })
})
