<?php

use Illuminate\Database\Migrations\Migration;
use Illuminate\Database\Schema\Blueprint;
use Illuminate\Support\Facades\Schema;

// "v2" of the example app: a harmless, additive schema change.
return new class extends Migration
{
    public function up()
    {
        Schema::table('deploys', function (Blueprint $table) {
            $table->string('note')->nullable();
        });
    }

    public function down()
    {
        Schema::table('deploys', function (Blueprint $table) {
            $table->dropColumn('note');
        });
    }
};
