import {expect} from 'chai'
import {maskUrlPassword} from '../../src/scaffold/server-config.js'

describe('scaffold server-config: a database URL on the terminal', () => {
  it('never shows the password: as it is typed (a star a character) nor once entered (****), an unencoded @, # or / in it included', () => {
    expect(maskUrlPassword('postgres://writer:s3cret@db.internal:5432/audit')).to.equal('postgres://writer:****@db.internal:5432/audit')
    expect(maskUrlPassword('postgres://writer:bad#pw/x@db/audit')).to.equal('postgres://writer:****@db/audit')
    expect(maskUrlPassword('postgres://writer:p@ss@db/audit')).to.equal('postgres://writer:****@db/audit')
    expect(maskUrlPassword('postgres://writer@db:5432/audit')).to.equal('postgres://writer@db:5432/audit') // no password
    expect(maskUrlPassword('postgres://db.internal:5432/audit')).to.equal('postgres://db.internal:5432/audit')
    // while typed, before the '@': what follows the ':' may be a password
    expect(maskUrlPassword('postgres://writer:s3c', true)).to.equal('postgres://writer:***')
    expect(maskUrlPassword('postgres://writer:s3cret@db', true)).to.equal('postgres://writer:******@db')
    expect(maskUrlPassword('postgres://db.internal:54', true)).to.equal('postgres://db.internal:**')
    expect(maskUrlPassword('postgres://wri', true)).to.equal('postgres://wri')
  })
})
