<?php

use Illuminate\Database\Migrations\Migration;

// Simulates a bad deploy: `artisan migrate` exits non-zero.
// It throws before touching the schema on purpose: Laravel 8 does not wrap
// SQLite migrations in a transaction, so partial work would stay behind.
return new class extends Migration
{
    public function up()
    {
        throw new RuntimeException('deployfile example: this migration fails on purpose');
    }

    public function down()
    {
        //
    }
};
